package io.vllmsnap.cuda;

import java.util.List;

/** One way of driving the driver's per-process checkpoint steps: the FFM binding of libcuda or the cuda-checkpoint binary. */
public interface GpuCheckpointBackend {
    /** Short name for logs and reports ("driver-api" or "cuda-checkpoint"). */
    String name();

    /** The driver version as CUDA encodes it (1000 * major + 10 * minor), e.g. 13000. */
    int driverVersion();

    void lock(int pid, int timeoutMs);

    void checkpoint(int pid);

    void restore(int pid, List<GpuPair> gpuPairs);

    void unlock(int pid);

    ProcessGpuState state(int pid);

    /**
     * The thread of the process that the driver restores it with (CRIU's CUDA plugin keeps it running while the rest
     * of the tree is frozen).
     *
     * @throws CudaException when the process is no CUDA process or the backend cannot tell
     */
    int restoreThreadId(int pid);
}
