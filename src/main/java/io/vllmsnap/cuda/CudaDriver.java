package io.vllmsnap.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.util.List;
import java.util.Optional;

/**
 * The CUDA driver API calls vllmsnap needs, bound with Java's FFM API against libcuda.so.1. The driver is
 * initialised (cuInit) once on load; the checkpoint calls act on another process, given by PID, and need
 * no context in this one.
 */
public final class CudaDriver implements GpuCheckpointBackend {
    public static final String DEFAULT_LIBRARY = "libcuda.so.1";
    /** Checkpoint API appeared in driver 570 (CUDA 12.8). */
    static final int MIN_CHECKPOINT_DRIVER = 12080;

    private static final Linker LINKER = Linker.nativeLinker();

    private final SymbolLookup lib;
    private final MethodHandle getErrorName;
    private final MethodHandle driverGetVersion;
    private final MethodHandle deviceGetCount;
    private final MethodHandle deviceGet;
    private final MethodHandle deviceGetName;
    private final MethodHandle deviceGetUuid;
    private final MethodHandle deviceTotalMem;
    private final MethodHandle lock;
    private final MethodHandle checkpoint;
    private final MethodHandle restore;
    private final MethodHandle unlock;
    private final MethodHandle getState;
    private final MethodHandle getRestoreThreadId;
    private final int driverVersion;

    private CudaDriver(SymbolLookup lib) {
        this.lib = lib;
        MethodHandle init = required("cuInit", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
        getErrorName = optional("cuGetErrorName", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS)).orElse(null);
        driverGetVersion = required("cuDriverGetVersion", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        deviceGetCount = required("cuDeviceGetCount", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        deviceGet = required("cuDeviceGet", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
        deviceGetName = required("cuDeviceGetName", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT));
        // cuda.h maps these names to their _v2 symbols; the unversioned ones are the old ABI.
        deviceGetUuid = optional("cuDeviceGetUuid_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT))
                .orElseGet(() -> required("cuDeviceGetUuid", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT)));
        deviceTotalMem = required("cuDeviceTotalMem_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));

        check("cuInit", (int) invoke(init, 0));
        driverVersion = readInt("cuDriverGetVersion", driverGetVersion);

        FunctionDescriptor pidArgs = FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS);
        lock = checkpointSymbol("cuCheckpointProcessLock", pidArgs);
        checkpoint = checkpointSymbol("cuCheckpointProcessCheckpoint", pidArgs);
        restore = checkpointSymbol("cuCheckpointProcessRestore", pidArgs);
        unlock = checkpointSymbol("cuCheckpointProcessUnlock", pidArgs);
        getState = checkpointSymbol("cuCheckpointProcessGetState", pidArgs);
        getRestoreThreadId = checkpointSymbol("cuCheckpointProcessGetRestoreThreadId", pidArgs);
    }

    /**
     * Loads libcuda.so.1 from the loader's search path (or the library the system property vllmsnap.libcuda
     * names) and initialises the driver.
     */
    public static CudaDriver load() {
        return load(System.getProperty("vllmsnap.libcuda", DEFAULT_LIBRARY));
    }

    /**
     * Loads the driver library named (a soname or a path) and initialises it.
     *
     * @throws CudaUnavailableException when the library is absent, or the driver cannot initialise
     */
    public static CudaDriver load(String library) {
        SymbolLookup lookup;
        try {
            lookup = SymbolLookup.libraryLookup(library, Arena.global());
        } catch (IllegalArgumentException e) {
            throw new CudaUnavailableException(library + " not found: no NVIDIA driver on this machine"
                    + " (or its library is not on the loader path)");
        }
        try {
            return new CudaDriver(lookup);
        } catch (CudaException e) {
            if (e instanceof CudaUnavailableException) {
                throw e;
            }
            throw new CudaUnavailableException("the NVIDIA driver in " + library + " did not initialise: " + e.getMessage());
        }
    }

    @Override
    public String name() {
        return "driver-api";
    }

    @Override
    public int driverVersion() {
        return driverVersion;
    }

    /** Whether this driver exports the checkpoint API (driver >= 570). */
    public boolean supportsCheckpoint() {
        return lock != null && checkpoint != null && restore != null && unlock != null && getState != null;
    }

    public int deviceCount() {
        return readInt("cuDeviceGetCount", deviceGetCount);
    }

    public String deviceName(int ordinal) {
        try (Arena arena = Arena.ofConfined()) {
            int dev = device(arena, ordinal);
            MemorySegment buf = arena.allocate(256);
            check("cuDeviceGetName", (int) invoke(deviceGetName, buf, 256, dev));
            return buf.getString(0);
        }
    }

    public byte[] deviceUuid(int ordinal) {
        try (Arena arena = Arena.ofConfined()) {
            int dev = device(arena, ordinal);
            MemorySegment uuid = arena.allocate(CheckpointArgs.UUID);
            check("cuDeviceGetUuid", (int) invoke(deviceGetUuid, uuid, dev));
            return uuid.toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
        }
    }

    public long deviceTotalMemory(int ordinal) {
        try (Arena arena = Arena.ofConfined()) {
            int dev = device(arena, ordinal);
            MemorySegment bytes = arena.allocate(JAVA_LONG);
            check("cuDeviceTotalMem", (int) invoke(deviceTotalMem, bytes, dev));
            return bytes.get(JAVA_LONG, 0);
        }
    }

    @Override
    public void lock(int pid, int timeoutMs) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment args = CheckpointArgs.lock(arena, timeoutMs);
            checkPid("cuCheckpointProcessLock", pid, (int) invoke(need(lock, "cuCheckpointProcessLock"), pid, args));
        }
    }

    @Override
    public void checkpoint(int pid) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment args = CheckpointArgs.checkpoint(arena);
            checkPid("cuCheckpointProcessCheckpoint", pid,
                    (int) invoke(need(checkpoint, "cuCheckpointProcessCheckpoint"), pid, args));
        }
    }

    @Override
    public void restore(int pid, List<GpuPair> gpuPairs) {
        try (Arena arena = Arena.ofConfined()) {
            // Drivers before 580 take no pair map: pass NULL args then, as the API allows.
            MemorySegment args = gpuPairs.isEmpty() ? MemorySegment.NULL : CheckpointArgs.restore(arena, gpuPairs);
            checkPid("cuCheckpointProcessRestore", pid,
                    (int) invoke(need(restore, "cuCheckpointProcessRestore"), pid, args));
        }
    }

    @Override
    public void unlock(int pid) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment args = CheckpointArgs.unlock(arena);
            checkPid("cuCheckpointProcessUnlock", pid, (int) invoke(need(unlock, "cuCheckpointProcessUnlock"), pid, args));
        }
    }

    @Override
    public ProcessGpuState state(int pid) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_INT);
            checkPid("cuCheckpointProcessGetState", pid,
                    (int) invoke(need(getState, "cuCheckpointProcessGetState"), pid, out));
            return ProcessGpuState.fromCode(out.get(JAVA_INT, 0));
        }
    }

    /** The thread of the process that the driver uses to restore it (CRIU must leave it alone while restoring). */
    @Override
    public int restoreThreadId(int pid) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_INT);
            checkPid("cuCheckpointProcessGetRestoreThreadId", pid,
                    (int) invoke(need(getRestoreThreadId, "cuCheckpointProcessGetRestoreThreadId"), pid, out));
            return out.get(JAVA_INT, 0);
        }
    }

    /** The driver's own name for a CUresult, falling back to vllmsnap's table. */
    public String errorName(int code) {
        if (getErrorName != null) {
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment out = arena.allocate(ADDRESS);
                if ((int) invoke(getErrorName, code, out) == CudaResult.SUCCESS) {
                    MemorySegment str = out.get(ADDRESS, 0);
                    if (!str.equals(MemorySegment.NULL)) {
                        return str.reinterpret(256).getString(0);
                    }
                }
            }
        }
        return CudaResult.name(code);
    }

    private int device(Arena arena, int ordinal) {
        MemorySegment dev = arena.allocate(JAVA_INT);
        check("cuDeviceGet", (int) invoke(deviceGet, dev, ordinal));
        return dev.get(JAVA_INT, 0);
    }

    private int readInt(String fn, MethodHandle handle) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_INT);
            check(fn, (int) invoke(handle, out));
            return out.get(JAVA_INT, 0);
        }
    }

    private void check(String fn, int code) {
        if (code != CudaResult.SUCCESS) {
            throw new CudaException(fn, code, errorName(code), CudaResult.hint(code));
        }
    }

    private void checkPid(String fn, int pid, int code) {
        if (code != CudaResult.SUCCESS) {
            throw new CudaException(fn + "(pid " + pid + ")", code, errorName(code), CudaResult.hint(code));
        }
    }

    private MethodHandle need(MethodHandle h, String fn) {
        if (h == null) {
            throw new CudaUnavailableException("the NVIDIA driver (version " + formatVersion(driverVersion)
                    + ") has no " + fn + ": GPU checkpointing needs driver 570 (CUDA 12.8) or newer");
        }
        return h;
    }

    private MethodHandle checkpointSymbol(String fn, FunctionDescriptor fd) {
        return optional(fn, fd).orElse(null);
    }

    private Optional<MethodHandle> optional(String fn, FunctionDescriptor fd) {
        return lib.find(fn).map(addr -> LINKER.downcallHandle(addr, fd));
    }

    private MethodHandle required(String fn, FunctionDescriptor fd) {
        return optional(fn, fd).orElseThrow(
                () -> new CudaUnavailableException("the CUDA driver library lacks " + fn + ": not a usable libcuda"));
    }

    private static Object invoke(MethodHandle h, Object... args) {
        try {
            return h.invokeWithArguments(args);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException("native call failed", t);
        }
    }

    /** 13000 -> "13.0". */
    public static String formatVersion(int cudaVersion) {
        return (cudaVersion / 1000) + "." + (cudaVersion % 1000) / 10;
    }
}
