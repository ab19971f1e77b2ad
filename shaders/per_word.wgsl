// The entry point of the kernels that compute one output element at a time from its
// flat index: one invocation per output word (u8/i8 four elements to a word, u16/i16
// two, the rest one), over a 2-D grid of workgroups (one dimension stops at 65535).
// The kernel's file declares `P` (with a `count` field) and
// `fn compute(e: u32) -> Out`, the value of output element `e` (dense C order).

@compute @workgroup_size(WORKGROUP)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    // A 2-D grid of workgroups: one dimension stops at 65535 groups.
    let w = gid.x + gid.y * groups.x * WORKGROUP;
    let first = w * OUT_PER_WORD;
    if (first >= P.count) {
        return;
    }
    var word = 0u;
    for (var j = 0u; j < OUT_PER_WORD; j++) {
        if (first + j < P.count) {
            word = word | out_pack(compute(first + j), j);
        }
    }
    dst[w] = word;
}
