package io.vllmsnap.cuda;

/** No way to reach the GPU checkpoint API on this machine (no libcuda.so.1, too old a driver, no cuda-checkpoint). */
public class CudaUnavailableException extends CudaException {
    public CudaUnavailableException(String message) {
        super("gpu-checkpoint", message);
    }
}
