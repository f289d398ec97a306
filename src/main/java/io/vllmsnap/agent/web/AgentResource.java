package io.vllmsnap.agent.web;

import io.vllmsnap.agent.AgentConfig;
import io.vllmsnap.agent.Ids;
import io.vllmsnap.agent.api.CompatibilityIdentity;
import io.vllmsnap.agent.api.ImageInfo;
import io.vllmsnap.agent.api.JobStatus;
import io.vllmsnap.agent.api.NodeCapabilities;
import io.vllmsnap.agent.api.RestoreJobRequest;
import io.vllmsnap.agent.api.SnapshotJobRequest;
import io.vllmsnap.agent.jobs.ContainerCheckpointer;
import io.vllmsnap.agent.jobs.JobRunner;
import io.vllmsnap.agent.store.ImageStore;
import jakarta.inject.Inject;
import jakarta.ws.rs.Consumes;
import jakarta.ws.rs.DELETE;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.PathParam;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.QueryParam;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;

import java.io.IOException;
import java.util.List;

/** The node agent's API. Access is checked by {@link AgentAccessFilter} before any of these run. */
@Path(AgentResource.ROOT)
@Produces(MediaType.APPLICATION_JSON)
@Consumes(MediaType.APPLICATION_JSON)
public class AgentResource {

    public static final String ROOT = "/api/v1";

    @Inject
    JobRunner runner;
    @Inject
    ImageStore images;
    @Inject
    ContainerCheckpointer checkpointer;
    @Inject
    AgentConfig config;

    /** Bodies arrive as bytes and are read strictly here ({@link RequestBodies}), not by the lenient default mapper. */
    @POST
    @Path("/jobs/snapshot")
    public Response startSnapshot(byte[] body) {
        return Response.accepted(runner.submitSnapshot(RequestBodies.read(body, SnapshotJobRequest.class))).build();
    }

    @POST
    @Path("/jobs/restore")
    public Response startRestore(byte[] body) {
        return Response.accepted(runner.submitRestore(RequestBodies.read(body, RestoreJobRequest.class))).build();
    }

    @GET
    @Path("/jobs/{jobId}")
    public Response job(@PathParam("jobId") String jobId) {
        JobStatus status = runner.status(jobId);
        return status == null
                ? AgentAccessFilter.error(Response.Status.NOT_FOUND, "JobNotFound", "no job " + jobId + " on this node")
                : Response.ok(status).build();
    }

    @GET
    @Path("/images")
    public List<ImageInfo> images(@QueryParam("namespace") String namespace) {
        return images.list(Ids.dnsLabel("namespace", namespace));
    }

    @DELETE
    @Path("/images/{namespace}/{imageId}")
    public Response deleteImage(@PathParam("namespace") String namespace, @PathParam("imageId") String imageId) throws IOException {
        runner.deleteImage(namespace, imageId);
        return Response.noContent().build();
    }

    @GET
    @Path("/capabilities")
    public NodeCapabilities capabilities() {
        CompatibilityIdentity node = checkpointer.nodeIdentity();
        return new NodeCapabilities(config.nodeName(), agentVersion(), node.criuVersion(), node.driverVersion(),
                checkpointer.gpus(), mpsDaemonRunning(), false, images.freeBytes(), config.maxConcurrentJobs(), runner.queueDepth());
    }

    /** MPS clients cannot be checkpointed by today's drivers: the operator needs to know a daemon runs here. */
    private static boolean mpsDaemonRunning() {
        try {
            return io.vllmsnap.cuda.MpsDetector.system().daemon().running();
        } catch (RuntimeException e) {
            return false;
        }
    }

    private static String agentVersion() {
        String v = AgentResource.class.getPackage().getImplementationVersion();
        return v != null ? v : "dev";
    }
}
