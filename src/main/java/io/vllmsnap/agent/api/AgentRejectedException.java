package io.vllmsnap.agent.api;

/** The agent refused the request; retrying the same request will not help. */
public class AgentRejectedException extends RuntimeException {
    private final String reason;

    public AgentRejectedException(String reason, String message) {
        super(message);
        this.reason = reason;
    }

    /** Machine-readable reason (CamelCase), suitable for a status condition. */
    public String reason() {
        return reason;
    }
}
