package io.vllmsnap.agent.api;

/** The agent could not be reached or answered with a server error; the caller may try again later. */
public class AgentUnavailableException extends RuntimeException {
    public AgentUnavailableException(String message, Throwable cause) {
        super(message, cause);
    }

    public AgentUnavailableException(String message) {
        super(message);
    }
}
