"""What the benchmark scripts share: the machine they ran on, and where their tables go."""

import importlib.metadata
import os
import platform
import re
import subprocess
import threading
import time


def cpu_name():
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def write_section(path, name, text):
    """Replaces the text between `<!-- begin NAME -->` and `<!-- end NAME -->` in the
    Markdown file at path (appending the section if it is not there yet)."""
    begin, end = f"<!-- begin {name} -->", f"<!-- end {name} -->"
    block = f"{begin}\n{text.rstrip()}\n{end}"
    with open(path) as f:
        doc = f.read()
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    doc = pattern.sub(lambda _: block, doc) if pattern.search(doc) else doc.rstrip() + "\n\n" + block + "\n"
    with open(path, "w") as f:
        f.write(doc)


def run_polling_rss(cmd, **kwargs):
    """Runs cmd; returns (seconds, completed process, peak RSS in bytes). The peak is
    the child's own VmHWM, read from /proc every 5 ms while it runs (the last reading
    before it exits): a parent's rusage would count the Python image the child was
    spawned from. The dirty pages of earlier runs are written back first (os.sync), so
    that no run pays for the writes of the one before it."""
    os.sync()
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)
    peak = [0]

    def poll():
        status = f"/proc/{proc.pid}/status"
        while proc.poll() is None:
            try:
                with open(status) as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            peak[0] = max(peak[0], int(line.split()[1]) * 1024)
            except (OSError, ValueError):
                pass
            time.sleep(0.005)

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    out, err = proc.communicate()
    seconds = time.perf_counter() - t
    watcher.join()
    return seconds, subprocess.CompletedProcess(cmd, proc.returncode, out, err), peak[0]


def versions(modules=("numpy", "scipy", "zarr", "dask", "dask_image")):
    """rustc's and the Python modules' versions (those importable), one line."""
    parts = []
    try:
        rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.split()[1]
        parts.append(f"rustc {rustc}")
    except (OSError, IndexError):
        pass
    for name in modules:
        dist = name.replace("_", "-")
        try:
            parts.append(f"{dist} {importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    parts.append(f"Python {platform.python_version()}")
    return ", ".join(parts)


def machine_line():
    """CPU, cores, memory and kernel, one line."""
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kib = int(next(l for l in f if l.startswith("MemTotal:")).split()[1])
        mem = f", {kib / 2**20:.0f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    return f"{cpu_name()}, {os.cpu_count()} cores{mem}, {platform.system()} {platform.release()}"
