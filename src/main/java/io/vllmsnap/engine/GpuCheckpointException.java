package io.vllmsnap.engine;

/** A GPU checkpoint step failed or is not supported for the process; the message says which and why. */
public class GpuCheckpointException extends Exception {
    public GpuCheckpointException(String message) {
        super(message);
    }

    public GpuCheckpointException(String message, Throwable cause) {
        super(message, cause);
    }
}
