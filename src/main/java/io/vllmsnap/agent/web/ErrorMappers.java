package io.vllmsnap.agent.web;

import io.vllmsnap.agent.InvalidIdException;
import io.vllmsnap.agent.api.AgentRejectedException;
import jakarta.ws.rs.core.Response;
import org.jboss.resteasy.reactive.server.ServerExceptionMapper;

/** Turns refusals into clear HTTP errors: bad input 400, unknown image 404, conflicts 409, incompatible node 422. */
public class ErrorMappers {

    @ServerExceptionMapper
    public Response invalidId(InvalidIdException e) {
        return AgentAccessFilter.error(Response.Status.BAD_REQUEST, "InvalidId", e.getMessage());
    }

    @ServerExceptionMapper
    public Response rejected(AgentRejectedException e) {
        int status = switch (e.reason()) {
            case "ImageNotFound" -> 404;
            case "Incompatible" -> 422;
            default -> 409;
        };
        return AgentAccessFilter.error(status, e.reason(), e.getMessage());
    }
}
