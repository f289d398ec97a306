#!/usr/bin/env python3
"""A CPU stand-in for a vLLM server: the HTTP endpoints vllmsnap drives, and state that lives in memory.

Standard library only. Its answers are a function of what is in its memory (weights, KV pool, compiled-kernel
cache, request counter), so a test can prove that a restored copy holds exactly the state the source had.

Start-up does what vLLM's does, in miniature, and keeps the results in memory (which a restore skips):
  1. load weights from a file (created with random bytes when missing), verify their SHA-256;
  2. "compile": rounds of hashing over windows of the weights, kept as a kernel cache (stands for torch.compile
     and CUDA graph capture, the largest fixed cost of a real vLLM start);
  3. allocate and fill the KV pool (stands for the profile run and KV-cache allocation).

Sleep mirrors vLLM: level 1 keeps the weights (vLLM offloads them to host memory) and drops the KV pool; level 2
drops both; /wake_up re-reads what was dropped and allocates a fresh, zeroed KV pool.

The HTTP surface lives in `StandInHandler`; a GPU flavour can reuse it with another `Model` implementation.
"""
import argparse
import hashlib
import json
import mmap
import os
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse, parse_qs

GIB = 1 << 30
MIB = 1 << 20
WORDS = ("the", "a", "model", "state", "restored", "token", "snapshot", "memory", "cache", "weights",
         "kernel", "layer", "fast", "same", "node", "pod")


def ensure_weights(path, size):
    """Creates the weights file with random bytes when it is missing or has another size."""
    if os.path.exists(path) and os.path.getsize(path) == size:
        return
    tmp = path + ".partial"
    with open(tmp, "wb") as f:
        left = size
        while left:
            n = min(left, 64 * MIB)
            f.write(os.urandom(n))
            left -= n
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def anonymous(size):
    """Anonymous memory the kernel zero-fills lazily (bytearray(n) would write n zero bytes first)."""
    return mmap.mmap(-1, max(size, 1), flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)


def read_file(path, readers=4):
    """Reads a file into anonymous memory with parallel readers (as vLLM's loaders do): page faults on fresh memory
    and page-cache copies run on several cores."""
    size = os.path.getsize(path)
    buf = anonymous(size)
    view = memoryview(buf)
    chunk = 64 * MIB
    offsets = list(range(0, size, chunk))
    errors = []

    def worker(mine):
        fd = os.open(path, os.O_RDONLY)
        try:
            for off in mine:
                end = min(off + chunk, size)
                got = off
                while got < end:
                    n = os.preadv(fd, [view[got:end]], got)
                    if n <= 0:
                        raise IOError(f"short read of {path} at {got} of {size} bytes")
                    got += n
        except Exception as e:  # reported below: one failing reader fails the load
            errors.append(e)
        finally:
            os.close(fd)

    threads = [threading.Thread(target=worker, args=(offsets[i::readers],)) for i in range(readers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    view.release()
    if errors:
        raise errors[0]
    return buf


class CpuModel:
    """State of the stand-in model. All mutation holds `lock`."""

    def __init__(self, name, weights_path, kv_bytes, compile_rounds):
        self.name = name
        self.weights_path = weights_path
        self.kv_bytes = kv_bytes
        self.compile_rounds = compile_rounds
        self.lock = threading.Lock()
        self.weights = None
        self.weights_sha256 = None
        self.kernels = []
        self.kv = None
        self.counter = 0
        self.sleep_level = 0
        self.timings = {}

    def start(self):
        t0 = time.monotonic()
        self.weights = read_file(self.weights_path)
        t1 = time.monotonic()
        self.weights_sha256 = hashlib.sha256(self.weights).hexdigest()
        t2 = time.monotonic()
        self.kernels = self._compile()
        t3 = time.monotonic()
        self.kv = anonymous(self.kv_bytes)
        self.kv[:] = hashlib.shake_128(bytes.fromhex(self.weights_sha256)).digest(self.kv_bytes)
        t4 = time.monotonic()
        self.timings = {"load_s": t1 - t0, "verify_s": t2 - t1, "compile_s": t3 - t2, "kv_s": t4 - t3}

    def _compile(self):
        view = memoryview(self.weights)
        window = min(len(view), 64 * MIB)
        kernels = []
        for r in range(self.compile_rounds):
            start = (r * 7919 * MIB) % max(1, len(view) - window + 1)
            h = hashlib.sha256(r.to_bytes(8, "little"))
            h.update(view[start:start + window])
            kernels.append(h.digest())
        view.release()
        return kernels

    def sleep(self, level):
        with self.lock:
            if level not in (1, 2):
                raise ValueError("level must be 1 or 2")
            self.kv = self._release(self.kv)
            if level == 2:
                self.weights = self._release(self.weights)
            self.sleep_level = max(self.sleep_level, level)

    @staticmethod
    def _release(buf):
        """Gives the memory back to the kernel now (an mmap would otherwise live until garbage collection)."""
        if buf is not None:
            try:
                buf.close()
            except BufferError:  # a request still holds a view; the memory goes when it is done
                pass
        return None

    def wake(self):
        with self.lock:
            if self.weights is None:
                self.weights = read_file(self.weights_path)
            if self.kv is None:
                self.kv = anonymous(self.kv_bytes)  # a fresh pool, as vLLM allocates after waking
            self.sleep_level = 0

    def complete(self, prompt, max_tokens):
        """Samples memory at positions chosen by prompt and counter; records the request in the KV pool."""
        with self.lock:
            if self.sleep_level:
                raise RuntimeError("model is sleeping; POST /wake_up first")
            self.counter += 1
            seed = hashlib.sha256(f"{self.counter}\0{prompt}".encode()).digest()
            h = hashlib.sha256(seed)
            for i in range(16):
                pos = int.from_bytes(hashlib.sha256(seed + bytes([i])).digest()[:8], "little")
                w = pos % max(1, len(self.weights) - 4096)
                k = pos % max(1, len(self.kv) - 4096)
                h.update(self.weights[w:w + 4096])
                h.update(self.kv[k:k + 4096])
            h.update(self.kernels[int.from_bytes(seed[:4], "little") % len(self.kernels)] if self.kernels else b"")
            digest = h.digest()
            slot = (self.counter * 4096) % max(1, len(self.kv) - 32)
            self.kv[slot:slot + 32] = digest  # the request leaves a trace in the KV pool, as a prefix cache would
            stream = hashlib.shake_256(digest).digest(max(1, max_tokens))
            text = " " + " ".join(WORDS[b % len(WORDS)] for b in stream[:max_tokens])
            return text, self.counter, digest.hex()

    def touch(self, mode, threads, what="all"):
        """Reads the weights and/or the KV pool (`what`: "all", "weights", "kv") at once, as a restored GPU process reads
        its host copy. mode "pages" reads one byte of each 4 KiB page (the cost of bringing the memory in, no more);
        "bytes" reads every byte with `threads` readers in parallel (CRC-32 per 16 MiB chunk; zlib lets go of the GIL,
        so the readers fault at once). Returns what was read, how long it took, and a checksum of the content
        (independent of `threads`)."""
        page, chunk = 4096, 16 * MIB
        with self.lock:
            if what not in ("all", "weights", "kv"):
                raise ValueError('what must be "all", "weights" or "kv"')
            bufs = [b for name, b in (("weights", self.weights), ("kv", self.kv))
                    if b is not None and what in ("all", name)]
            views = [memoryview(b) for b in bufs]
            try:
                t0 = time.monotonic()
                if mode == "pages":
                    sums = [zlib.crc32(bytes(v[::page])) for v in views]
                elif mode == "bytes":
                    parts = [v[off:off + chunk] for v in views for off in range(0, len(v), chunk)]
                    sums = [0] * len(parts)

                    def reader(mine):
                        for i in mine:
                            sums[i] = zlib.crc32(parts[i])

                    readers = [threading.Thread(target=reader, args=(range(i, len(parts), threads),))
                               for i in range(threads)]
                    for t in readers:
                        t.start()
                    for t in readers:
                        t.join()
                    for part in parts:
                        part.release()
                else:
                    raise ValueError('mode must be "pages" or "bytes"')
                seconds = time.monotonic() - t0
            finally:
                for v in views:
                    v.release()
            checksum = hashlib.sha256(b"".join(s.to_bytes(4, "little") for s in sums)).hexdigest()
            return {"mode": mode, "what": what, "bytes": sum(len(b) for b in bufs),
                    "threads": threads if mode == "bytes" else 1, "seconds": seconds, "checksum": checksum}

    def state(self):
        """Full digests of memory (slow: hashes everything). For tests and `inspect`, not for serving."""
        with self.lock:
            return {
                "weights_sha256": hashlib.sha256(self.weights).hexdigest() if self.weights is not None else None,
                "kv_sha256": hashlib.sha256(self.kv).hexdigest() if self.kv is not None else None,
                "kernels_sha256": hashlib.sha256(b"".join(self.kernels)).hexdigest(),
                "counter": self.counter,
                "sleep_level": self.sleep_level,
                "pid": os.getpid(),
                "start_timings": self.timings,
            }


class StandInHandler(BaseHTTPRequestHandler):
    """vLLM's HTTP surface over any model object with sleep/wake/complete/state (see CpuModel)."""
    model = None
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: stdio is /dev/null inside a snapshot source anyway
        pass

    def _send(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if not n:
            return {}
        return json.loads(self.rfile.read(n) or b"{}")

    def do_GET(self):
        url = urlparse(self.path)
        m = self.model
        if url.path == "/health":
            self._send(200, {"status": "ok"})
        elif url.path == "/v1/models":
            self._send(200, {"object": "list", "data": [{"id": m.name, "object": "model", "owned_by": "vllmsnap"}]})
        elif url.path == "/is_sleeping":
            self._send(200, {"is_sleeping": m.sleep_level > 0})
        elif url.path == "/state":
            self._send(200, m.state())
        else:
            self._send(404, {"error": f"no route {url.path}"})

    def do_POST(self):
        url = urlparse(self.path)
        m = self.model
        try:
            if url.path == "/sleep":
                level = int(parse_qs(url.query).get("level", ["1"])[0])
                m.sleep(level)
                self._send(200, {"status": "sleeping", "level": level})
            elif url.path == "/touch" and hasattr(m, "touch"):
                q = parse_qs(url.query)
                threads = int(q.get("threads", ["4"])[0])
                if threads < 1 or threads > 64:
                    self._send(400, {"error": "threads must be 1..64"})
                    return
                self._send(200, m.touch(q.get("mode", ["pages"])[0], threads, q.get("what", ["all"])[0]))
            elif url.path == "/wake_up":
                m.wake()
                self._send(200, {"status": "awake"})
            elif url.path == "/v1/completions":
                req = self._body()
                prompt = req.get("prompt", "")
                if isinstance(prompt, list):
                    prompt = "\n".join(map(str, prompt))
                max_tokens = int(req.get("max_tokens", 16))
                if max_tokens < 1 or max_tokens > 4096:
                    self._send(400, {"error": "max_tokens must be 1..4096"})
                    return
                text, counter, digest = m.complete(prompt, max_tokens)
                self._send(200, {
                    "id": f"cmpl-{counter}", "object": "text_completion", "created": int(time.time()),
                    "model": m.name,
                    "choices": [{"index": 0, "text": text, "finish_reason": "length"}],
                    "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": max_tokens,
                              "total_tokens": len(prompt.split()) + max_tokens},
                    "vllmsnap": {"counter": counter, "digest": digest},
                })
            else:
                self._send(404, {"error": f"no route {url.path}"})
        except ValueError as e:
            self._send(400, {"error": str(e)})
        except RuntimeError as e:
            self._send(503, {"error": str(e)})


def parse_size(text):
    text = text.strip().lower()
    units = {"k": 1 << 10, "m": MIB, "g": GIB}
    for suffix in ("ib", "b"):
        if text.endswith(suffix) and len(text) > len(suffix) and text[-len(suffix) - 1] in units:
            text = text[:-len(suffix)]
    if text[-1:] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def serve(model, host, port):
    """Serves a started model (CPU or GPU flavour) on the vLLM endpoints until the process ends."""
    StandInHandler.model = model
    server = ThreadingHTTPServer((host, port), StandInHandler)
    server.daemon_threads = True
    print(f"stand-in ready on {host}:{port} pid {os.getpid()} {json.dumps(model.timings)}", flush=True)
    server.serve_forever()


def main(argv=None):
    p = argparse.ArgumentParser(description="CPU stand-in for a vLLM server (vllmsnap tests and demo)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--model", default="vllmsnap/standin")
    p.add_argument("--weights", default="/var/tmp/vllmsnap-standin.weights", help="weights file (created if missing)")
    p.add_argument("--weights-size", default="2GiB", type=parse_size, help="size of the weights file")
    p.add_argument("--kv-size", default="512MiB", type=parse_size, help="size of the KV pool")
    p.add_argument("--compile-rounds", default=48, type=int,
                   help="rounds of hashing 64 MiB windows of the weights at start (the stand-in's torch.compile)")
    args = p.parse_args(argv)
    ensure_weights(args.weights, args.weights_size)
    model = CpuModel(args.model, args.weights, args.kv_size, args.compile_rounds)
    model.start()
    serve(model, args.host, args.port)


if __name__ == "__main__":
    main()
