package io.vllmsnap.agent.web;

/** Body of every error answer of the agent API. */
public record ApiError(String reason, String message) {
}
