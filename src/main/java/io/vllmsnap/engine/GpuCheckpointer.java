package io.vllmsnap.engine;

import java.time.Duration;
import java.util.List;

/**
 * GPU state of one process, moved to and from host memory by the NVIDIA driver's checkpoint API
 * ({@code cuCheckpointProcess*}). The engine calls it for every CUDA process of a tree, in parallel:
 * before a dump {@link #lock} then {@link #checkpoint}; after a restore (or after a failed dump, so the source keeps
 * serving) {@link #restore} then {@link #unlock}.
 *
 * <p>Implementations: {@link NoGpuCheckpointer} (machines without a GPU driver: no process is a CUDA process) and the
 * FFM binding in {@code io.vllmsnap.cuda}.
 */
public interface GpuCheckpointer {

    /**
     * Whether this implementation can work on this node (driver library loads, checkpoint API present). Used by
     * {@link GpuCheckpointers#detect()} to pick among implementations registered as services.
     */
    default boolean available() {
        return true;
    }

    /** Whether the process holds a CUDA context the driver can checkpoint. Never throws for a missing process. */
    boolean isCudaProcess(long pid);

    /**
     * Refuses before anything is locked when the process cannot be checkpointed (MPS client, MIG, ...).
     *
     * @throws GpuCheckpointException with a message a user can act on
     */
    default void checkSupported(long pid) throws GpuCheckpointException {
    }

    /** Blocks new CUDA work of the process; waits at most {@code timeout} for running work to finish. */
    void lock(long pid, Duration timeout) throws GpuCheckpointException;

    /** Copies the process's GPU memory to host memory and releases its GPU resources. Process must be locked. */
    void checkpoint(long pid) throws GpuCheckpointException;

    /** Moves the checkpointed GPU state back onto the GPU(s). The process stays locked. */
    void restore(long pid) throws GpuCheckpointException;

    /** Lets the process run CUDA work again. */
    void unlock(long pid) throws GpuCheckpointException;

    /** The driver's view of the process. */
    GpuProcessState state(long pid) throws GpuCheckpointException;

    /** GPUs of this node as the manifest records them (model, UUID, driver); empty without a GPU. */
    default List<GpuInfo> gpus() {
        return List.of();
    }

    /** Driver's checkpoint states ({@code CUprocessState}). */
    enum GpuProcessState { RUNNING, LOCKED, CHECKPOINTED, FAILED }

    /** One GPU of the node. */
    record GpuInfo(int index, String uuid, String name, String driverVersion) {
    }
}
