package io.vllmsnap.cuda;

/** The process is a client of an NVIDIA MPS daemon: the driver cannot checkpoint it, so we refuse before touching it. */
public class MpsClientException extends CudaException {
    public MpsClientException(int pid, String evidence) {
        super("gpu-checkpoint", "process " + pid + " is a client of an NVIDIA MPS daemon (" + evidence
                + "); the driver cannot checkpoint MPS clients (CUDA_ERROR_NOT_SUPPORTED) and CRIU cannot dump the"
                + " MPS mapping: run the server without MPS to snapshot it");
    }
}
