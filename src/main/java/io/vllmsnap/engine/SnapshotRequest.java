package io.vllmsnap.engine;

import java.nio.file.Path;

/**
 * What to snapshot and how.
 *
 * @param pid                 host PID of the source: PID 1 of its own PID namespace (the container's init)
 * @param out                 image directory to create; it must not exist yet
 * @param port                port of the vLLM HTTP server (sleep/wake)
 * @param sleepLevel          0 = transparent, 1 or 2 = vLLM sleep level asked for before the dump
 * @param leaveRunning        the source keeps serving after the dump (woken again when it was put to sleep)
 * @param tcpEstablished      dump established TCP connections (CRIU locks the network with nftables meanwhile)
 * @param fileLocks           dump file locks held by the tree
 * @param externalUnixSockets allow unix sockets connected to peers outside the tree
 * @param host                address the engine reaches the server's HTTP port at (its pod IP when the source has
 *                            its own network namespace)
 */
public record SnapshotRequest(long pid, Path out, int port, int sleepLevel, boolean leaveRunning,
                              boolean tcpEstablished, boolean fileLocks, boolean externalUnixSockets,
                              Timeouts timeouts, String host) {

    public static SnapshotRequest of(long pid, Path out, int port, int sleepLevel, boolean leaveRunning) {
        return new SnapshotRequest(pid, out, port, sleepLevel, leaveRunning, false, false, false, Timeouts.defaults(),
                "127.0.0.1");
    }

    public SnapshotRequest withHost(String newHost) {
        return new SnapshotRequest(pid, out, port, sleepLevel, leaveRunning, tcpEstablished, fileLocks,
                externalUnixSockets, timeouts, newHost);
    }
}
