"""What the GPU benchmark reads around a snapshot or a restore, with Python's standard library only (the GPU machines
have nothing else for the driver script):

  proc_io / io_delta     a process's I/O counters (/proc/PID/io). Read around a command, the benchmark's own counters
                         grow by what the command and the children it reaped read: rchar counts every byte read
                         through read()/pread() (page cache hits included), read_bytes what came from the disk.
  residency              how much of a set of files is in the page cache (mincore on a read-only mapping).
  dump_log_vmas          the large memory areas of a CRIU dump log (-v4 lists every area with its mmap flags and
                         CRIU's status bits), each with whether our map-fill patch can map it from the image.
  restore_log_summary    what a CRIU restore log says about filling memory: map fill, huge-page fill, page counts and
                         the large areas the restorer mapped.
  smaps_summary          a process's memory by kind of mapping, and its largest mappings with their VmFlags.
  image_mappings         how much of a restored process maps its image's pages file (map fill).
"""
import ctypes
import ctypes.util
import mmap
import os
import re
import statistics

MIB = 1 << 20
PAGE = os.sysconf("SC_PAGE_SIZE")

# mmap flags as CRIU logs them (VmaEntry.flags; "lo" in smaps becomes MAP_LOCKED, "gd" MAP_GROWSDOWN, ...)
MAP_FLAGS = {0x01: "MAP_SHARED", 0x02: "MAP_PRIVATE", 0x08: "MAP_DROPPABLE", 0x10: "MAP_FIXED",
             0x20: "MAP_ANONYMOUS", 0x100: "MAP_GROWSDOWN", 0x800: "MAP_DENYWRITE", 0x1000: "MAP_EXECUTABLE",
             0x2000: "MAP_LOCKED", 0x4000: "MAP_NORESERVE", 0x8000: "MAP_POPULATE", 0x40000: "MAP_HUGETLB"}
# CRIU's VMA status bits (criu/include/image.h, CRIU 4.2 with our patches 0002 and 0003)
VMA_STATUS = {1 << 0: "REGULAR", 1 << 1: "STACK", 1 << 2: "VSYSCALL", 1 << 3: "VDSO", 1 << 5: "HEAP",
              1 << 6: "FILE_PRIVATE", 1 << 7: "FILE_SHARED", 1 << 8: "ANON_SHARED", 1 << 9: "ANON_PRIVATE",
              1 << 10: "SYSVIPC", 1 << 11: "SOCKET", 1 << 12: "VVAR", 1 << 13: "AIORING", 1 << 14: "MEMFD",
              1 << 15: "SHSTK", 1 << 16: "GUARD", 1 << 17: "UPROBES", 1 << 25: "MAP_FILL", 1 << 26: "THP_FILL",
              1 << 27: "EXT_PLUGIN", 1 << 28: "CLOSE", 1 << 29: "NO_PROT_WRITE", 1 << 30: "PREMMAPED",
              1 << 31: "UNSUPP"}


def bits(value, names):
    return [name for bit, name in sorted(names.items()) if value & bit]


# ---------------------------------------------------------------- I/O counters
def proc_io(pid="self"):
    """The counters of /proc/PID/io as ints; {} where the kernel has none (no task I/O accounting)."""
    try:
        with open(f"/proc/{pid}/io") as f:
            return {k.strip(): int(v) for k, v in (line.split(":", 1) for line in f if ":" in line)}
    except (OSError, ValueError):
        return {}


def io_delta(before, after):
    return {k: after[k] - before[k] for k in ("rchar", "read_bytes", "syscr") if k in before and k in after}


# ---------------------------------------------------------------- page cache
_libc = None


def _lib():
    global _libc
    if _libc is None:
        lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        lib.mmap.restype = ctypes.c_void_p
        lib.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                             ctypes.c_long]
        lib.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        lib.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
        _libc = lib
    return _libc


_ODD = bytes(b & 1 for b in range(256))  # mincore: bit 0 says resident, the others are reserved


def file_residency(path):
    """(bytes of the file in the page cache, size). Mapping a file reads nothing; mincore then reports the page
    cache (for root, or the file's owner: since Linux 5.0 others only see pages they have mapped themselves)."""
    size = os.path.getsize(path)
    if size == 0:
        return 0, 0
    lib = _lib()
    fd = os.open(path, os.O_RDONLY)
    try:
        addr = lib.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        if addr in (None, ctypes.c_void_p(-1).value):
            raise OSError(ctypes.get_errno(), f"mmap {path}")
        try:
            pages = (size + PAGE - 1) // PAGE
            vec = (ctypes.c_ubyte * pages)()
            if lib.mincore(addr, size, vec) != 0:
                raise OSError(ctypes.get_errno(), f"mincore {path}")
            resident = bytes(vec).translate(_ODD).count(1)
        finally:
            lib.munmap(addr, size)
    finally:
        os.close(fd)
    return min(resident * PAGE, size), size


def residency(paths):
    """Page-cache residency of every regular file under paths (files or directories)."""
    out = {"resident_bytes": 0, "total_bytes": 0, "files": 0}
    for p in paths:
        files = [p] if os.path.isfile(p) else [os.path.join(r, n) for r, _, names in os.walk(p) for n in names]
        for f in files:
            if not os.path.isfile(f) or os.path.islink(f):
                continue
            try:
                res, size = file_residency(f)
            except OSError as e:
                out.setdefault("errors", []).append(f"{f}: {e}")
                continue
            out["resident_bytes"] += res
            out["total_bytes"] += size
            out["files"] += 1
    out["fraction"] = round(out["resident_bytes"] / out["total_bytes"], 4) if out["total_bytes"] else None
    return out


# ---------------------------------------------------------------- CRIU logs
# CRIU prints these with %#x: zero comes out as "0", anything else as "0x..."
_HEX = r"(0x[0-9a-f]+|0)"
_DUMP_VMA = re.compile(r"0x([0-9a-f]+)-0x([0-9a-f]+) \((\d+)K\) prot " + _HEX + " flags " + _HEX +
                       r" fdflags \S+ st " + _HEX + " off " + _HEX + r" ?(.*?) shmid: " + _HEX)


def map_fill_refusals(flags, status):
    """Why our map-fill patch (hack/criu-patches/0003) would not map an area from the image, judged from what a dump
    log shows: [] when it may. The patch also refuses areas with madvise bits other than (NO)HUGEPAGE, DONTFORK,
    (DO|DONT)DUMP, which the log does not show, and areas with no pages in the image."""
    why = []
    if not status & (1 << 9):
        why.append("not private anonymous memory" + (" (shared anonymous: restored as shmem)"
                                                     if status & (1 << 8) else ""))
    for bit, name in ((1 << 1, "stack"), (1 << 13, "AIO ring"), (1 << 16, "guard"), (1 << 15, "shadow stack")):
        if status & bit:
            why.append(name)
    for bit, name in ((0x2000, "MAP_LOCKED (mlocked: VM_LOCKED)"), (0x100, "MAP_GROWSDOWN"), (0x01, "MAP_SHARED")):
        if flags & bit:
            why.append(name)
    if status & (1 << 31):
        why.append("unsupported by CRIU (VM_IO/VM_PFNMAP)")
    return why


def dump_log_vmas(path, min_bytes=64 * MIB):
    """The areas of at least min_bytes that a CRIU dump log lists, with flags, status and map-fill eligibility."""
    out, seen = [], set()
    with open(path, errors="replace") as f:
        for line in f:
            m = _DUMP_VMA.search(line)
            if not m:
                continue
            start, end = int(m.group(1), 16), int(m.group(2), 16)
            if end - start < min_bytes or (start, end) in seen:  # CRIU lists the areas more than once
                continue
            seen.add((start, end))
            flags, status = int(m.group(5), 16), int(m.group(6), 16)
            why = map_fill_refusals(flags, status)
            out.append({"start": hex(start), "size_mib": round((end - start) / MIB, 1), "prot": m.group(4),
                        "flags": bits(flags, MAP_FLAGS), "status": bits(status, VMA_STATUS),
                        "opt": m.group(8).strip(), "map_fill_eligible": not why, "map_fill_refused_because": why})
    return out


_PIE_MMAP = re.compile(r"mmap\((?:0x)?([0-9a-f]+) -> (?:0x)?([0-9a-f]+), ((?:0x)?[0-9a-f]+) ((?:0x)?[0-9a-f]+) (-?\d+)\)")
_NUMBERS = {"nr_restored_pages": re.compile(r"nr_restored_pages:\s+(\d+)"),
            "nr_shared_pages": re.compile(r"nr_shared_pages:\s+(\d+)"),
            "nr_enqueued": re.compile(r"nr_enqueued:\s+(\d+)"),
            "nr_lazy": re.compile(r"nr_lazy:\s+(\d+)"),
            "map_fill_candidate_mib": re.compile(r"map fill: (\d+) MiB of private anonymous memory may be mapped"),
            "thp_fill_mib": re.compile(r"THP fill: (\d+) MiB of private anonymous memory")}
_MAPPED = re.compile(r"map fill: (\d+) MiB mapped in (\d+) mappings, (\d+) MiB read")


def restore_log_summary(path, min_bytes=64 * MIB):
    """Filling memory, as a CRIU restore log (-v4) tells it: page counts, map fill (what may be and what was mapped),
    huge-page fill, and the areas of at least min_bytes the restorer mapped (with their mmap flags)."""
    out = {"large_areas": []}
    with open(path, errors="replace") as f:
        for line in f:
            for key, rx in _NUMBERS.items():
                m = rx.search(line)
                if m:
                    out[key] = int(m.group(1))
            m = _MAPPED.search(line)
            if m:
                out["map_fill_mapped_mib"], out["map_fill_mappings"], out["map_fill_read_mib"] = map(int, m.groups())
            m = _PIE_MMAP.search(line)
            if m and int(m.group(2), 16) - int(m.group(1), 16) >= min_bytes:
                size = int(m.group(2), 16) - int(m.group(1), 16)
                out["large_areas"].append({"start": "0x" + m.group(1), "size_mib": round(size / MIB, 1),
                                           "prot": hex(int(m.group(3), 16)),
                                           "flags": bits(int(m.group(4), 16), MAP_FLAGS),
                                           "fd": int(m.group(5))})
    return out


# ---------------------------------------------------------------- processes
def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def smaps_summary(pid, top=12):
    """Resident anonymous memory of a process by kind of mapping (what CRIU would dump), and the largest mappings."""
    kinds, maps = {}, []
    cur = None
    try:
        lines = open(f"/proc/{pid}/smaps").read().splitlines()
    except OSError as e:
        return {"error": str(e)}
    for line in lines:
        head = line.split()
        if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
            name = head[5] if len(head) > 5 else ""
            kind = ("heap" if name == "[heap]" else "stack" if name.startswith("[stack") else
                    "anon" if not name else "nvidia-dev" if name.startswith("/dev/nvidia") else
                    "shm" if name.startswith(("/dev/shm", "/memfd:", "/SYSV")) else
                    "other-special" if name.startswith("[") else "file")
            cur = {"range": head[0], "perms": head[1], "name": name, "kind": kind}
            maps.append(cur)
        elif cur is not None and head and head[0] == "VmFlags:":
            cur["VmFlags"] = " ".join(head[1:])  # lo: mlocked, dc: MADV_DONTFORK, io/pf: device memory, ...
        elif cur is not None and len(head) >= 2 and head[0].endswith(":") and head[1].isdigit():
            cur[head[0][:-1]] = int(head[1]) * 1024
    for m in maps:
        k = kinds.setdefault(m["kind"], {"mappings": 0, "rss": 0, "anonymous": 0, "private_dirty": 0,
                                         "anon_huge": 0})
        k["mappings"] += 1
        k["rss"] += m.get("Rss", 0)
        k["anonymous"] += m.get("Anonymous", 0)
        k["private_dirty"] += m.get("Private_Dirty", 0)
        k["anon_huge"] += m.get("AnonHugePages", 0)
    big = sorted(maps, key=lambda m: -max(m.get("Rss", 0), m.get("Anonymous", 0) + m.get("Shared_Dirty", 0)))[:top]
    return {"by_kind": kinds, "anonymous_total": sum(m.get("Anonymous", 0) for m in maps),
            "largest": [{k: m.get(k) for k in ("range", "perms", "name", "Size", "Rss", "Anonymous", "Private_Dirty",
                                               "Shared_Dirty", "AnonHugePages", "Locked", "VmFlags")} for m in big]}


def image_mappings(pid):
    """How much of a restored process's memory maps its image's pages file (map fill), how much of that is in memory,
    and how much the process has copied by writing (Anonymous): read after its first requests."""
    total = {"mappings": 0, "size": 0, "rss": 0, "anonymous": 0}
    current = False
    try:
        with open(f"/proc/{pid}/smaps") as f:
            for line in f:
                head = line.split()
                if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                    current = bool(re.search(r"/pages-\d+\.img( \(deleted\))?$", line.rstrip()))
                    total["mappings"] += current
                elif current and head[0] in ("Size:", "Rss:", "Anonymous:"):
                    total[head[0][:-1].lower()] += int(head[1]) * 1024
    except OSError as e:
        return {"error": str(e)}
    return total


def mean_phases(reps):
    keys = {}
    for r in reps:
        for k, v in (r.get("phases") or {}).items():
            keys.setdefault(k, []).append(v)
    return {k: statistics.mean(v) for k, v in keys.items()}
