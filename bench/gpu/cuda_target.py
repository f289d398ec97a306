#!/usr/bin/env python3
"""A CUDA process for the checkpoint proof: fills GPU memory with a known pattern, keeps computing, and on request
checks that its memory is unchanged.

Usage: cuda_target.py WORKDIR [GIB]. Writes WORKDIR/ready.json once the tensor is filled. Each time WORKDIR/verify
appears it checks the tensor against the pattern regenerated from scratch, runs more GPU work, writes
WORKDIR/result-N.json and removes the request. Stops when WORKDIR/stop appears. Between requests it runs a small
GPU step every 0.2 s and records how long each took: while the driver holds it locked the step blocks, so the
longest step shows the lock took effect and the process carried on afterwards.
"""
import json
import os
import sys
import time

import torch

work = sys.argv[1]
gib = float(sys.argv[2]) if len(sys.argv) > 2 else 4.0
n = int(gib * (1 << 30)) // 8


def pattern():
    i = torch.arange(n, dtype=torch.int64, device="cuda")
    return (i * 2654435761 + 12345) % 2147483647


def write(name, obj):
    tmp = os.path.join(work, name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(obj, f)
    os.replace(tmp, os.path.join(work, name))


x = pattern()
gen = torch.Generator(device="cuda").manual_seed(7)
a = torch.randn(4096, 4096, device="cuda", generator=gen)
ref_matmul = float((a @ a).double().sum().item())
checksum = int(x.sum().item())
torch.cuda.synchronize()
write("ready.json", {"pid": os.getpid(), "bytes": n * 8, "checksum": checksum, "matmul": ref_matmul,
                     "memory_allocated": torch.cuda.memory_allocated()})

counter = torch.zeros(1, dtype=torch.int64, device="cuda")
rounds = 0
longest_step = 0.0
steps = 0
while not os.path.exists(os.path.join(work, "stop")):
    if os.path.exists(os.path.join(work, "verify")):
        rounds += 1
        t0 = time.monotonic()
        same_checksum = int(x.sum().item()) == checksum
        identical = bool(torch.equal(x, pattern()))
        same_matmul = float((a @ a).double().sum().item()) == ref_matmul
        for _ in range(50):  # keeps computing after the restore
            b = a @ a
        counter += 1
        torch.cuda.synchronize()
        write(f"result-{rounds}.json", {
            "round": rounds, "identical": identical, "same_checksum": same_checksum, "same_matmul": same_matmul,
            "checksum": int(x.sum().item()), "expected_checksum": checksum, "steps": steps,
            "longest_step_s": longest_step, "gpu_counter": int(counter.item()),
            "verify_s": time.monotonic() - t0, "ok": identical and same_checksum and same_matmul})
        os.remove(os.path.join(work, "verify"))
        longest_step = 0.0
        continue
    t0 = time.monotonic()
    counter += 1
    torch.cuda.synchronize()
    longest_step = max(longest_step, time.monotonic() - t0)
    steps += 1
    time.sleep(0.2)
