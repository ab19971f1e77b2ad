#!/usr/bin/env python3
"""Lists import cycles between the modules of src/ (use crate::/super::, and a mod.rs's
use of its children). There should be none."""
import re,glob
import os
os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
mods={}
def modname(f):
    p=f[4:-3]
    if p.endswith('/mod'): p=p[:-4]
    return p.replace('/','::')
for f in glob.glob('src/**/*.rs',recursive=True):
    if f.endswith('main.rs') or f.endswith('lib.rs'): continue
    m=modname(f); s=open(f).read().split('#[cfg(test)]')[0]
    s='\n'.join(l for l in s.splitlines() if not l.strip().startswith('//'))
    deps=set()
    for kind,path in re.findall(r'\b(crate|super)::([a-z_:{]+)', s):
        deps.add(path if kind=='crate' else '::'.join((m.split('::')[:-1])+[path]))
    if f.endswith('mod.rs'):
        for c in re.findall(r'^(?:pub(?:\(crate\))? )?use ([a-z_]+)::', s, re.M):
            deps.add(m+'::'+c)
    mods[m]=deps
names=set(mods)
def resolve(t):
    parts=[p for p in t.split('::') if p]
    for i in range(len(parts),0,-1):
        c='::'.join(parts[:i])
        if c in names: return c
graph={m:{resolve(d) for d in ds}-{None,m} for m,ds in mods.items()}
idx={};low={};st=[];on=set();res=[];c=[0]
def sc(v):
    idx[v]=low[v]=c[0];c[0]+=1;st.append(v);on.add(v)
    for w in graph[v]:
        if w not in idx: sc(w);low[v]=min(low[v],low[w])
        elif w in on: low[v]=min(low[v],idx[w])
    if low[v]==idx[v]:
        comp=[]
        while True:
            w=st.pop();on.discard(w);comp.append(w)
            if w==v: break
        if len(comp)>1: res.append(sorted(comp))
for v in graph:
    if v not in idx: sc(v)
print("cycles:",res)
