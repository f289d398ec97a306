package io.vllmsnap.cuda;

/** A CUDA driver call, or the cuda-checkpoint binary standing in for it, failed; the message says which and why. */
public class CudaException extends RuntimeException {
    private final int code;
    private final String operation;

    public CudaException(String operation, int code, String codeName, String detail) {
        super(operation + " failed: " + codeName + " (" + code + ")" + (detail == null || detail.isBlank() ? "" : ": " + detail));
        this.code = code;
        this.operation = operation;
    }

    protected CudaException(String operation, String message) {
        super(message);
        this.code = -1;
        this.operation = operation;
    }

    /** The CUresult code, or -1 where the failure was not a driver result. */
    public int code() {
        return code;
    }

    public String operation() {
        return operation;
    }
}
