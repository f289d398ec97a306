package io.vllmsnap.agent.container;

import java.util.Map;

/**
 * What a container image needs at restore beyond CRIU's own files ({@code container.json} next to {@code criu/}):
 * which mount points of the source were declared external, under which key, and the network namespace key.
 *
 * @param externalMounts key → mount point inside the source container
 * @param netKey         key under which the source's network namespace was declared external
 * @param vllmPort       port the server listened on
 * @param cudaProcesses  processes whose GPU state was checkpointed by the driver before the dump
 * @param sleepLevel     vLLM sleep level the server was put to before the dump; a restore wakes it
 */
public record ContainerImageLayout(Map<String, String> externalMounts, String netKey, int vllmPort, int cudaProcesses,
        int sleepLevel) {

    public static final String FILE_NAME = "container.json";
    public static final String CRIU_DIR = "criu";
}
