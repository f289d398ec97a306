#!/usr/bin/env python3
"""GPU flavour of the stand-in vLLM server: a real transformer on the GPU, built from a config with random weights.

Same HTTP surface as the CPU stand-in (server.StandInHandler). What a vLLM start does, in miniature and timed:
  1. import torch/transformers and initialise CUDA;
  2. load the weights from safetensors (built from the config with random values and saved on the first run,
     since no model hub is reachable on the GPU machines);
  3. allocate the KV pool as one GPU tensor sized by --gpu-memory-utilization, as vLLM sizes its cache;
  4. a warm-up generation.
/v1/completions runs greedy generation, so two servers with the same weights answer the same prompt alike.

Two flavours of sleep and wake (--flavour), so the benchmark can tell what the snapshot engine achieves with a server
it did not write from what a server can add:
  vllm      as vLLM's sleep mode (CuMemAllocator) does it. Level 1 copies each weight tensor into its own pinned host
            buffer (torch's pinned allocator, i.e. cudaHostAlloc, one synchronous copy each), frees the GPU copy and
            discards the KV pool; wake copies each back. Level 2 discards weights and KV pool and keeps only the
            model's buffers in host memory; wake maps fresh GPU memory and reloads the weights with the ordinary
            loader (safetensors tensors read on the CPU, copied into the parameters with pageable copies: no file
            registered with the driver, no copy plan). Freed heap memory is kept (vLLM does not trim it).
  register  the stand-in's own fast path: level 2 wakes by registering the safetensors mapping with the driver and
            copying straight from the page cache (--weight-loader), freed heap is given back at sleep (--trim-on-sleep).
"""
import argparse
import hashlib
import json
import os
import struct
import sys
import threading
import time

T_PROCESS = time.monotonic()

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
try:
    from vllmsnap_standin.server import serve  # run as a module of the package
except ImportError:  # run as a script next to server.py
    from server import serve

GIB = 1 << 30

# Shapes of real models (the numbers are public architecture facts); weights are random.
SHAPES = {
    "qwen2-1.5b": dict(arch="qwen2", hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                       num_attention_heads=12, num_key_value_heads=2, vocab_size=151936,
                       max_position_embeddings=32768, rope_theta=1000000.0, tie_word_embeddings=True,
                       gpu_memory_utilization=0.3),
    "llama-8b": dict(arch="llama", hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                     num_attention_heads=32, num_key_value_heads=8, vocab_size=128256,
                     max_position_embeddings=8192, rope_theta=500000.0, tie_word_embeddings=False,
                     gpu_memory_utilization=0.9),
    # A tiny shape for smoke tests on small GPUs.
    "tiny": dict(arch="llama", hidden_size=256, intermediate_size=512, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, vocab_size=4096,
                 max_position_embeddings=1024, rope_theta=10000.0, tie_word_embeddings=False,
                 gpu_memory_utilization=0.05),
}


def build_config(shape):
    from transformers import LlamaConfig, Qwen2Config
    spec = dict(SHAPES[shape])
    arch = spec.pop("arch")
    spec.pop("gpu_memory_utilization")
    cls = Qwen2Config if arch == "qwen2" else LlamaConfig
    return cls(**spec)


def from_config(config, torch, dtype):
    from transformers import AutoModelForCausalLM
    try:
        return AutoModelForCausalLM.from_config(config, dtype=dtype)
    except TypeError:  # transformers < 4.56 names it torch_dtype
        return AutoModelForCausalLM.from_config(config, torch_dtype=dtype)


def safetensors_files(weights_dir):
    return sorted(os.path.join(weights_dir, f) for f in os.listdir(weights_dir) if f.endswith(".safetensors"))



SAFETENSORS_DTYPES = {"BF16": "bfloat16", "F16": "float16", "F32": "float32", "F64": "float64", "I64": "int64",
                      "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool"}


def safetensors_index(path):
    """Tensor name -> (dtype name, shape, start, end) with absolute byte offsets in the file. The format: an 8-byte
    little-endian header length, a JSON header, then the raw tensor bytes."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    base = 8 + n
    return {name: (SAFETENSORS_DTYPES[e["dtype"]], e["shape"], base + e["data_offsets"][0], base + e["data_offsets"][1])
            for name, e in header.items() if name != "__metadata__"}, base


def copy_plan(start, end, chunk):
    """Byte ranges [a, b) covering [start, end) in pieces of at most `chunk` bytes."""
    return [(a, min(a + chunk, end)) for a in range(start, end, chunk)]


def register_plan(base, size, register_chunk, copy_chunk):
    """Registration pieces of a mapped file of `size` bytes, each with the copies of tensor data [base, size) inside
    it: [((ra, rb), [(a, b), ...]), ...]. Pieces start page-aligned (register_chunk is a multiple of the page size;
    0 registers the whole file at once), so piece i+1 can be registered while piece i's copies run."""
    step = register_chunk or size
    return [((ra, rb), copy_plan(max(base, ra), rb, copy_chunk)) for ra, rb in copy_plan(0, size, step)
            if rb > base]


FLAVOURS = ("vllm", "register")


def sleep_steps(flavour, level, trim):
    """The steps of a sleep at `level`, in order (GpuModel runs a method per step). Raises ValueError for a level
    other than 1 or 2 or an unknown flavour."""
    if flavour not in FLAVOURS:
        raise ValueError(f"unknown flavour {flavour!r}")
    if level not in (1, 2):
        raise ValueError("level must be 1 or 2")
    steps = []
    if flavour == "vllm" and level == 2:
        steps.append("save_buffers")  # vLLM's worker copies the model's buffers to the CPU before level 2
    steps.append("offload_weights" if level == 1 else "discard_weights")
    steps.append("discard_kv")
    if flavour == "register":
        steps.append("clear_workspaces")  # vLLM leaves cuBLAS's workspaces alone (they are not in its pools)
    steps.append("empty_gpu_cache")
    if trim:
        steps.append("trim_host")
    return steps


def wake_steps(flavour, level):
    """The steps of a wake from `level`, in order."""
    if flavour not in FLAVOURS:
        raise ValueError(f"unknown flavour {flavour!r}")
    if level == 1:
        weights = ["restore_weights_sync" if flavour == "vllm" else "restore_weights_async"]
    elif level == 2:
        weights = ["map_weights", "restore_buffers", "reload_ordinary"] if flavour == "vllm" else ["reload_fast"]
    else:
        raise ValueError("level must be 1 or 2")
    return weights + ["allocate_kv"]


def ordinary_load_plan(checkpoint_names, param_names):
    """Which checkpoint tensor fills which parameter when weights load the ordinary way (by name, as vLLM's default
    loader does): returns (names to load, names ignored). Raises ValueError naming the parameters no checkpoint
    tensor fills: a model left with uninitialised weights would answer garbage, so vLLM refuses it too. Tied
    parameters appear once in param_names (torch's named_parameters), under the name the checkpoint stores."""
    params = set(param_names)
    load = [n for n in checkpoint_names if n in params]
    ignored = sorted(n for n in checkpoint_names if n not in params)
    missing = sorted(params - set(load))
    if missing:
        raise ValueError(f"{len(missing)} parameters are in no checkpoint file: {missing[:5]}")
    return load, ignored


def resolve_options(flavour, weight_loader, trim_on_sleep):
    """The loader and heap trim a flavour uses: (weight_loader, trim). The vllm flavour loads the ordinary way, so it
    refuses a --weight-loader; the register flavour defaults to the register loader. Heap trim defaults to on for
    the register flavour and off for vllm (vLLM keeps freed heap), and either can be set explicitly."""
    if flavour not in FLAVOURS:
        raise ValueError(f"unknown flavour {flavour!r}")
    if flavour == "vllm":
        if weight_loader is not None:
            raise ValueError("--weight-loader belongs to the register flavour; the vllm flavour loads weights the"
                             " ordinary way")
        return "ordinary", bool(trim_on_sleep)
    return weight_loader or "register", trim_on_sleep is not False


class WeightLoader:
    """Reads safetensors files onto the GPU. Three ways, chosen by --weight-loader and compared by the benchmark:
      safetensors  the library's load_file(device="cuda") (pageable copies, one tensor at a time): the baseline;
      staged       reader threads pread the file into a few pinned buffers, copies run on several CUDA streams;
      register     the file is mmapped and registered with the driver read-only (cudaHostRegister), so the GPU copies
                   straight out of the page cache (no CPU copy); registered in pieces (--register-chunk-mib), each
                   piece's copies queued as soon as it is registered, so pinning the next overlaps the copies; falls
                   back to staged where registration fails.
    Fast loaders put each file in one GPU buffer and make parameters views of it; the buffer goes when the last view
    does (a level-2 sleep frees them all). Pinned buffers and registrations are released after each load, so the
    process carries no pinned memory into a snapshot."""

    CHUNK = 64 << 20

    def __init__(self, torch, kind, streams=4, readers=8, register_chunk=256 << 20):
        self.torch = torch
        self.kind = kind
        self.register_chunk = register_chunk
        self.streams = streams
        self.readers = readers
        self.used = kind  # what the last load really used (register may fall back)

    def load(self, path):
        """Returns {name: GPU tensor} for one file."""
        if self.kind == "safetensors":
            from safetensors.torch import load_file
            return load_file(path, device="cuda")
        index, base = safetensors_index(path)
        size = os.path.getsize(path)
        blob = self.torch.empty(size - base, dtype=self.torch.uint8, device="cuda")
        if self.kind == "register" and self._register_copy(path, base, size, blob):
            self.used = "register"
        else:
            self.used = "staged"
            self._staged_copy(path, base, size, blob)
        out = {}
        for name, (dtype, shape, start, end) in index.items():
            piece = blob[start - base:end - base]
            dt = getattr(self.torch, dtype)
            if (start - base) % piece.element_size() == 0 and (start - base) % dt.itemsize == 0:
                out[name] = piece.view(dt).view(shape)
            else:  # misaligned for its dtype: a copy of its own
                out[name] = piece.clone().view(dt).view(shape)
        return out

    def _streams(self):
        return [self.torch.cuda.Stream() for _ in range(self.streams)]

    def _register_copy(self, path, base, size, blob):
        import mmap
        torch = self.torch
        cudart = torch.cuda.cudart()
        with open(path, "rb") as f:
            mm = mmap.mmap(f.fileno(), size, prot=mmap.PROT_READ)
        mm.madvise(mmap.MADV_WILLNEED)  # a cold page cache is read ahead in big requests, not page by page
        host = None
        try:
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch warns that the buffer is read-only: we only read it
                host = torch.frombuffer(mm, dtype=torch.uint8)
            ptr = host.data_ptr()
            registered = []
            streams = self._streams()
            try:
                i = 0
                for (ra, rb), copies in register_plan(base, size, self.register_chunk, self.CHUNK):
                    rc = cudart.cudaHostRegister(ptr + ra, rb - ra, 8)  # 8 = cudaHostRegisterReadOnly
                    if int(rc) != 0:
                        print(f"cudaHostRegister({path} +{ra}) failed ({rc}); using pinned staging", file=sys.stderr)
                        return False
                    registered.append(ra)
                    for a, b in copies:
                        with torch.cuda.stream(streams[i % len(streams)]):
                            blob[a - base:b - base].copy_(host[a:b], non_blocking=True)
                        i += 1
            finally:
                for s in streams:
                    s.synchronize()
                for ra in registered:
                    cudart.cudaHostUnregister(ptr + ra)
            return True
        finally:
            del host
            try:
                mm.close()
            except BufferError:  # a view still alive: the mapping goes with it
                pass

    def _staged_copy(self, path, base, size, blob):
        import concurrent.futures
        torch = self.torch
        n = self.readers
        buffers = [torch.empty(self.CHUNK, dtype=torch.uint8, pin_memory=True) for _ in range(n)]
        streams = self._streams()
        done = [None] * n  # event per buffer: its last copy finished
        fd = os.open(path, os.O_RDONLY)
        try:
            def read(slot, a, b):
                if done[slot] is not None:
                    done[slot].synchronize()
                view = buffers[slot][:b - a]
                got = os.preadv(fd, [view.numpy()], a)
                if got != b - a:
                    raise IOError(f"{path}: short read at {a} ({got} of {b - a} bytes)")
                return slot, a, b

            plan = copy_plan(base, size, self.CHUNK)
            with concurrent.futures.ThreadPoolExecutor(n) as pool:
                for first in range(0, len(plan), n):
                    batch = plan[first:first + n]
                    for slot, a, b in pool.map(lambda x: read(x[0], *x[1]), enumerate(batch)):
                        stream = streams[slot % len(streams)]
                        with torch.cuda.stream(stream):
                            blob[a - base:b - base].copy_(buffers[slot][:b - a], non_blocking=True)
                            ev = torch.cuda.Event()
                            ev.record(stream)
                            done[slot] = ev
            for s in streams:
                s.synchronize()
        finally:
            os.close(fd)
            del buffers


def release_host_memory(torch=None):
    """Gives freed heap memory back to the kernel (glibc keeps it otherwise), and torch's cached pinned buffers, so a
    snapshot does not carry them."""
    import ctypes
    import gc
    gc.collect()
    empty_host_cache = getattr(getattr(torch, "_C", None), "_host_emptyCache", None)
    if empty_host_cache is not None:
        empty_host_cache()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class GpuModel:
    """A transformer on the GPU plus a KV pool; all mutation holds `lock`. Sleep and wake run the steps of
    sleep_steps()/wake_steps() for the model's flavour."""

    def __init__(self, name, shape, weights_dir, gpu_memory_utilization, kv_bytes, seed,
                 weight_loader="register", trim_on_sleep=True, register_chunk=256 << 20, flavour="register"):
        self.name = name
        self.shape = shape
        self.weights_dir = weights_dir
        self.utilization = gpu_memory_utilization
        self.kv_bytes_requested = kv_bytes
        self.seed = seed
        self.flavour = flavour
        self.lock = threading.Lock()
        self.counter = 0
        self.sleep_level = 0
        self.timings = {}
        self.kv = None
        self.kv_bytes = 0
        self.host_weights = None  # level 1: parameter name -> (pinned host tensor, shape, dtype)
        self.saved_buffers = None  # vllm level 2: buffer name -> host copy
        self.param_shapes = {}  # level 2: parameter name -> shape, for the wake
        self.built_weights = False
        self.weight_loader_kind = weight_loader
        self.trim_on_sleep = trim_on_sleep
        self.register_chunk = register_chunk
        self.last_sleep = {}
        self.last_wake = {}

    def start(self):
        t0 = time.monotonic()
        import torch
        import transformers  # noqa: F401  (import cost is part of a real start)
        import safetensors.torch  # noqa: F401
        self.torch = torch
        self.loader = WeightLoader(torch, self.weight_loader_kind, register_chunk=self.register_chunk)
        t1 = time.monotonic()
        torch.cuda.init()
        torch.zeros(1, device="cuda")
        t2 = time.monotonic()
        if not (os.path.isdir(self.weights_dir) and safetensors_files(self.weights_dir)):
            self._build_and_save()
        t3 = time.monotonic()
        self._load()
        t4 = time.monotonic()
        self._allocate_kv()
        t5 = time.monotonic()
        self.warmup_tokens = self._generate("warm up the kernels", 8)
        torch.cuda.synchronize()
        t6 = time.monotonic()
        self.timings = {"python_start_s": t0 - T_PROCESS, "import_s": t1 - t0, "cuda_init_s": t2 - t1,
                        "build_and_save_s": t3 - t2, "load_weights_s": t4 - t3, "kv_alloc_s": t5 - t4,
                        "warmup_s": t6 - t5, "built_weights": self.built_weights,
                        "weights_bytes": self.weights_bytes, "kv_bytes": self.kv_bytes,
                        "weight_loader": self._loader_used(), "flavour": self.flavour}

    def _loader_used(self):
        return "ordinary" if self.flavour == "vllm" else self.loader.used

    def _build_and_save(self):
        torch = self.torch
        os.makedirs(self.weights_dir, exist_ok=True)
        torch.manual_seed(self.seed)
        config = build_config(self.shape)
        with torch.device("cuda"):
            model = from_config(config, torch, torch.bfloat16)
        tmp = self.weights_dir + ".partial"
        model.save_pretrained(tmp, safe_serialization=True)
        for f in os.listdir(tmp):
            os.replace(os.path.join(tmp, f), os.path.join(self.weights_dir, f))
        os.rmdir(tmp)
        del model
        torch.cuda.empty_cache()
        self.built_weights = True

    def _load(self):
        torch = self.torch
        from transformers import AutoConfig
        config = AutoConfig.from_pretrained(self.weights_dir)
        # Parameters on the meta device take no memory and no random init; the safetensors tensors replace them.
        with torch.device("meta"):
            model = from_config(config, torch, torch.bfloat16)
        self.model = model.eval()
        if self.flavour == "vllm":
            # vLLM builds the model with uninitialised GPU parameters, then its loader copies each checkpoint tensor in.
            self.model.to_empty(device="cuda")
            self._tie()
            self._load_ordinary()
        else:
            self._load_weights_to_gpu()
        # Rotary frequencies are computed buffers, not stored weights: rebuild that module on the GPU.
        inner = self.model.model
        if hasattr(inner, "rotary_emb"):
            inner.rotary_emb = type(inner.rotary_emb)(config=config, device=torch.device("cuda"))
        left = [n for n, t in list(self.model.named_parameters()) + list(self.model.named_buffers())
                if t.device.type == "meta"]
        if left:
            raise RuntimeError(f"not loaded from {self.weights_dir}: {left[:3]}")
        self.weights_bytes = sum(p.numel() * p.element_size() for p in self.model.parameters())

    def _tie(self):
        if getattr(self.model.config, "tie_word_embeddings", False):
            # Tied checkpoints store the embedding once; the output head shares that tensor.
            self.model.lm_head.weight = self.model.model.embed_tokens.weight

    def _load_ordinary(self):
        """vLLM's default loader: each checkpoint tensor is read on the CPU (safetensors copies it out of the mapped
        file) and copied into its parameter's GPU memory (a pageable copy; the driver stages it)."""
        from safetensors import safe_open
        params = dict(self.model.named_parameters())
        files = safetensors_files(self.weights_dir)
        names = {}
        for f in files:
            with safe_open(f, framework="pt", device="cpu") as st:
                names[f] = list(st.keys())
        wanted = set(ordinary_load_plan([n for f in files for n in names[f]], list(params))[0])
        for f in files:
            with safe_open(f, framework="pt", device="cpu") as st:
                for name in names[f]:
                    if name in wanted:
                        params[name].data.copy_(st.get_tensor(name))
        self.torch.cuda.synchronize()

    def _load_weights_to_gpu(self):
        """Fills the parameters from the safetensors files: at start they are meta placeholders and are replaced
        (assign); after a level-2 sleep they are empty GPU tensors whose storage is swapped in place, which keeps
        the Parameter objects (and a tied output head) as they are."""
        params = dict(self.model.named_parameters())
        first_load = any(p.device.type == "meta" for p in params.values())
        for f in safetensors_files(self.weights_dir):
            tensors = self.loader.load(f)
            if first_load:
                self.model.load_state_dict(tensors, strict=False, assign=True)
            else:
                for key, tensor in tensors.items():
                    if key in params:
                        params[key].data = tensor
        if first_load:
            self._tie()
        self.torch.cuda.synchronize()

    def _allocate_kv(self):
        torch = self.torch
        if self.kv_bytes_requested:
            size = self.kv_bytes_requested
        else:
            free, total = torch.cuda.mem_get_info()
            # vLLM's rule: this server may use `utilization` of the GPU in all; the KV pool gets what the weights
            # and a working reserve for activations leave of it.
            reserve = 1 * GIB
            size = int(self.utilization * total) - torch.cuda.memory_reserved() - reserve
            size = max(64 << 20, min(size, free - reserve))
        self.kv = torch.zeros(size // 2, dtype=torch.bfloat16, device="cuda")
        self.kv_bytes = self.kv.numel() * 2

    def _prompt_ids(self, prompt):
        # No tokenizer on a machine without a hub: bytes of the prompt become token ids.
        vocab = self.model.config.vocab_size
        data = prompt.encode() or b"\0"
        return [(b * 257 + i) % vocab for i, b in enumerate(data)]

    def _generate(self, prompt, max_tokens):
        torch = self.torch
        ids = torch.tensor([self._prompt_ids(prompt)], device="cuda")
        with torch.inference_mode():
            out = self.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_tokens,
                                      min_new_tokens=max_tokens, do_sample=False, pad_token_id=0)
        return out[0, ids.shape[1]:].tolist()

    # ---------------------------------------------------------------- sleep and wake, step by step
    def sleep(self, level):
        with self.lock:
            steps = sleep_steps(self.flavour, level, self.trim_on_sleep)  # validates the level
            if self.sleep_level:
                return
            t0 = time.monotonic()
            for step in steps:
                getattr(self, "_step_" + step)()
            self.torch.cuda.synchronize()
            self.sleep_level = level
            self.last_sleep = {"level": level, "seconds": time.monotonic() - t0, "steps": steps,
                               "host_backup_bytes": self._host_backup_bytes()}

    def wake(self):
        with self.lock:
            if not self.sleep_level:
                return
            steps = wake_steps(self.flavour, self.sleep_level)
            t0 = time.monotonic()
            timed = {}
            for step in steps:
                ts = time.monotonic()
                getattr(self, "_step_" + step)()
                if step != "allocate_kv":
                    self.torch.cuda.synchronize()
                timed[step] = time.monotonic() - ts
            self.torch.cuda.synchronize()
            total = time.monotonic() - t0
            self.last_wake = {"level": self.sleep_level, "flavour": self.flavour, "seconds": total,
                              "weights_s": total - timed.get("allocate_kv", 0.0), "kv_s": timed.get("allocate_kv"),
                              "steps_s": timed, "weight_loader": self._loader_used()}
            self.sleep_level = 0

    def _step_save_buffers(self):
        # vLLM (level 2): {name: buffer.cpu().clone()}; the GPU buffers go with the weights' memory pool.
        self.saved_buffers = {}
        for name, b in self.model.named_buffers():
            self.saved_buffers[name] = b.detach().cpu().clone()
            b.data = self.torch.empty(0, dtype=b.dtype, device="cuda")

    def _step_restore_buffers(self):
        buffers = dict(self.model.named_buffers())
        for name, host in self.saved_buffers.items():
            buffers[name].data = host.to("cuda")
        self.saved_buffers = None

    def _step_offload_weights(self):
        torch = self.torch
        self.host_weights = {}
        for name, p in self.model.named_parameters():
            if self.flavour == "vllm":
                # CuMemAllocator.sleep: a pinned uint8 buffer per allocation, filled by a synchronous cudaMemcpy
                host = torch.empty(p.numel() * p.element_size(), dtype=torch.uint8, pin_memory=True)
                host.copy_(p.data.reshape(-1).view(torch.uint8))
            else:
                host = torch.empty(p.shape, dtype=p.dtype, pin_memory=True)
                host.copy_(p.data)
            self.host_weights[name] = (host, tuple(p.shape), p.dtype)
            p.data = torch.empty(0, dtype=p.dtype, device="cuda")

    def _step_discard_weights(self):
        self.param_shapes = {}
        for name, p in self.model.named_parameters():
            self.param_shapes[name] = tuple(p.shape)
            p.data = self.torch.empty(0, dtype=p.dtype, device="cuda")

    def _step_discard_kv(self):
        self.kv = None

    def _step_clear_workspaces(self):
        clear = getattr(self.torch._C, "_cuda_clearCublasWorkspaces", None)
        if clear is not None:  # cuBLAS keeps a workspace per stream; the next matmul makes it again
            clear()

    def _step_empty_gpu_cache(self):
        import gc
        gc.collect()
        self.torch.cuda.empty_cache()

    def _step_trim_host(self):
        release_host_memory(self.torch)

    def _step_restore_weights_sync(self):
        # CuMemAllocator.wake_up: map fresh GPU memory, one synchronous cudaMemcpy from the pinned backup each. The
        # backup then goes back to torch's pinned cache, as in vLLM (not to the system).
        torch = self.torch
        params = dict(self.model.named_parameters())
        for name, (host, shape, dtype) in self.host_weights.items():
            gpu = torch.empty(shape, dtype=dtype, device="cuda")
            gpu.reshape(-1).view(torch.uint8).copy_(host)
            params[name].data = gpu
        self.host_weights = None

    def _step_restore_weights_async(self):
        params = dict(self.model.named_parameters())
        for name, (host, _, _) in self.host_weights.items():
            params[name].data = host.to("cuda", non_blocking=True)
        self.host_weights = None

    def _step_map_weights(self):
        # CuMemAllocator.wake_up at level 2: memory mapped back, contents undefined until the weights are reloaded
        for name, p in self.model.named_parameters():
            p.data = self.torch.empty(self.param_shapes[name], dtype=p.dtype, device="cuda")

    def _step_reload_ordinary(self):
        self._load_ordinary()

    def _step_reload_fast(self):
        self._load_weights_to_gpu()

    def _step_allocate_kv(self):
        torch = self.torch
        if self.flavour == "vllm":
            # vLLM maps the KV pool's memory back without clearing it
            self.kv = torch.empty(self.kv_bytes // 2, dtype=torch.bfloat16, device="cuda")
        else:
            self.kv = torch.zeros(self.kv_bytes // 2, dtype=torch.bfloat16, device="cuda")

    def _host_backup_bytes(self):
        if not self.host_weights:
            return 0
        return sum(h.numel() * h.element_size() for h, _, _ in self.host_weights.values())

    def complete(self, prompt, max_tokens):
        with self.lock:
            if self.sleep_level:
                raise RuntimeError("model is sleeping; POST /wake_up first")
            self.counter += 1
            tokens = self._generate(prompt, max_tokens)
            digest = hashlib.sha256(json.dumps(tokens).encode()).hexdigest()
            return " " + " ".join(f"t{t}" for t in tokens), self.counter, digest

    def state(self):
        torch = self.torch
        with self.lock:
            checksum = None
            if not self.sleep_level:
                with torch.inference_mode():
                    checksum = float(sum(p.float().sum().item() for p in self.model.parameters()))
            host_stats = getattr(torch.cuda, "host_memory_stats", None)
            try:
                pinned = {k: v for k, v in host_stats().items() if k.startswith(("allocated_bytes", "reserved_bytes"))
                          and k.endswith(".current")} if host_stats else None
            except Exception as e:  # only a statistic: report why it is missing
                pinned = {"error": str(e)}
            return {"shape": self.shape, "flavour": self.flavour, "counter": self.counter,
                    "sleep_level": self.sleep_level,
                    "pid": os.getpid(), "weights_checksum": checksum, "kv_bytes": self.kv_bytes,
                    "gpu_memory_allocated": torch.cuda.memory_allocated(),
                    "gpu_memory_reserved": torch.cuda.memory_reserved(),
                    "gpu_memory_used_by_all": (lambda f, t: t - f)(*torch.cuda.mem_get_info()),
                    "host_backup_bytes": self._host_backup_bytes(), "pinned_host_memory": pinned,
                    "start_timings": self.timings, "last_sleep": self.last_sleep,
                    "last_wake": self.last_wake}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="GPU stand-in for a vLLM server (random-weight transformer)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--shape", choices=sorted(SHAPES), default="qwen2-1.5b")
    p.add_argument("--model", default=None, help="served model name (default vllmsnap/<shape>)")
    p.add_argument("--weights-dir", default=None,
                   help="safetensors directory (built from the config on first run; default /var/tmp/vllmsnap-gpu/<shape>)")
    p.add_argument("--gpu-memory-utilization", type=float, default=None,
                   help="fraction of GPU memory this server may use (default 0.3 for 1.5B, 0.9 for 8B)")
    p.add_argument("--kv-bytes", type=int, default=0, help="fixed KV pool size in bytes (overrides the fraction)")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--flavour", choices=FLAVOURS, default="vllm",
                   help="how sleep and wake work (default vllm: as vLLM's sleep mode, level 1 keeps the weights in"
                        " pinned host memory, level 2 reloads them with the ordinary loader; register: the stand-in's"
                        " own fast wake, what a server can add)")
    p.add_argument("--weight-loader", choices=["register", "staged", "safetensors"], default=None,
                   help="register flavour: how weights reach the GPU at start and wake (default register: GPU copies"
                        " straight from the page cache; staged: pinned buffers and reader threads; safetensors: the"
                        " library's loader)")
    p.add_argument("--register-chunk-mib", type=int, default=256,
                   help="register loader: MiB registered at a time, the next piece pinned while the last one copies"
                        " (default 256; 0: the whole file at once)")
    p.add_argument("--no-trim-on-sleep", dest="trim_on_sleep", action="store_false", default=None,
                   help="keep freed heap memory at sleep (the vllm flavour's default)")
    p.add_argument("--trim-on-sleep", dest="trim_on_sleep", action="store_true",
                   help="give freed heap memory back at sleep, so snapshots are smaller (the register flavour's"
                        " default)")
    p.add_argument("--self-check", action="store_true",
                   help="no server: start the model, then sleep and wake at levels 1 and 2 with every flavour in"
                        " turn (--flavour is the first), check that each answers as before, print one JSON line and"
                        " exit 0 (all alike) or 1")
    args = p.parse_args(argv)
    args.gpu_memory_utilization = args.gpu_memory_utilization or SHAPES[args.shape]["gpu_memory_utilization"]
    if not 0 < args.gpu_memory_utilization <= 1:
        p.error("--gpu-memory-utilization must be in (0, 1]")
    if args.register_chunk_mib < 0:
        p.error("--register-chunk-mib must be 0 or more")
    try:
        resolve_options(args.flavour, args.weight_loader, args.trim_on_sleep)  # refused here, before torch loads
    except ValueError as e:
        p.error(str(e))
    args.weights_dir = args.weights_dir or f"/var/tmp/vllmsnap-gpu/{args.shape}"
    return args


def make_model(args, flavour):
    """The model of `flavour` with the command line's options; a self-check's other flavour gets its defaults."""
    mine = flavour == args.flavour
    loader, trim = resolve_options(flavour, args.weight_loader if mine else None, args.trim_on_sleep if mine else None)
    return GpuModel(args.model or f"vllmsnap/{args.shape}", args.shape, args.weights_dir, args.gpu_memory_utilization,
                    args.kv_bytes, args.seed, loader, trim, args.register_chunk_mib << 20, flavour)


def self_check(args):
    """Every flavour, levels 1 and 2: the greedy completion after each wake must equal the one before the first
    sleep. One process, so torch is imported once; the models run one after another."""
    result = {"shape": args.shape, "flavours": {}, "ok": True}
    flavours = [args.flavour] + [f for f in FLAVOURS if f != args.flavour]
    prompt = "Snapshots bring a warmed-up server back in seconds because"
    for flavour in flavours:
        r = result["flavours"].setdefault(flavour, {})
        model = None
        try:
            model = make_model(args, flavour)
            model.start()
            ref = model.complete(prompt, 16)[0]
            r["start"] = model.timings
            for level in (1, 2):
                model.sleep(level)
                slept = dict(model.last_sleep)
                model.wake()
                same = model.complete(prompt, 16)[0] == ref
                r[f"level{level}"] = {"sleep": slept, "wake": model.last_wake, "same_completion": same}
                result["ok"] &= same
            r["completion"] = ref
        except Exception as e:  # reported in the JSON line: the caller decides what a failed flavour means
            r["error"] = f"{type(e).__name__}: {e}"
            result["ok"] = False
        finally:
            del model
            import gc
            gc.collect()
            try:
                import torch
                torch.cuda.empty_cache()
            except Exception:
                pass
    completions = {f["completion"] for f in result["flavours"].values() if "completion" in f}
    result["flavours_agree"] = len(completions) == 1
    print(json.dumps(result, default=str), flush=True)
    return 0 if result["ok"] else 1


def main(argv=None):
    args = parse_args(argv)
    if args.self_check:
        sys.exit(self_check(args))
    model = make_model(args, args.flavour)
    model.start()
    serve(model, args.host, args.port)


if __name__ == "__main__":
    main()
