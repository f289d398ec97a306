package io.vllmsnap.cuda;

import io.vllmsnap.engine.GpuCheckpointer;

/** Entry point the CLI and agent use to get this node's {@link GpuCheckpointer}. */
public final class CudaCheckpointers {
    private CudaCheckpointers() {
    }

    /**
     * The driver checkpoint API through FFM (or the cuda-checkpoint utility) where the node has an NVIDIA driver;
     * the engine's NoGpuCheckpointer where it has none. Never throws for a missing driver.
     */
    public static GpuCheckpointer detect() {
        return CudaCheckpointer.forThisNode();
    }
}
