package io.vllmsnap.agent.jobs;

/** A job failed for a reason the operator can act on; {@link #reason()} becomes the status condition's reason. */
public class JobFailedException extends RuntimeException {
    private final String reason;

    public JobFailedException(String reason, String message) {
        super(message);
        this.reason = reason;
    }

    public JobFailedException(String reason, String message, Throwable cause) {
        super(message, cause);
        this.reason = reason;
    }

    public String reason() {
        return reason;
    }
}
