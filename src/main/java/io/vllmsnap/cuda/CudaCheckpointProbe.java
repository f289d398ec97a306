package io.vllmsnap.cuda;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.vllmsnap.engine.GpuCheckpointException;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * Diagnostic command for the GPU checkpoint path on a node: driver and GPUs, each checkpoint step on a PID with
 * its wall time, MPS detection, CUDA processes of a tree. Prints one JSON object per invocation; exit code 0 when
 * the step worked, 1 when it failed (the JSON says why), 2 when no checkpoint API is reachable.
 */
@Command(name = "cuda-probe", mixinStandardHelpOptions = true,
        description = "Drive the NVIDIA driver's checkpoint API on one process and report what happened.",
        subcommands = {
            CudaCheckpointProbe.Info.class, CudaCheckpointProbe.Step.class, CudaCheckpointProbe.Cycle.class,
            CudaCheckpointProbe.Mps.class, CudaCheckpointProbe.CudaPids.class
        })
public final class CudaCheckpointProbe implements Runnable {
    static final ObjectMapper JSON = new ObjectMapper();

    public static void main(String[] args) {
        System.exit(new CommandLine(new CudaCheckpointProbe()).execute(args));
    }

    @Override
    public void run() {
        new CommandLine(this).usage(System.out);
    }

    static int print(ObjectNode node, int exit) {
        System.out.println(node.toString());
        return exit;
    }

    static ObjectNode unavailable(CudaUnavailableException e) {
        ObjectNode n = JSON.createObjectNode();
        n.put("ok", false);
        n.put("unavailable", true);
        n.put("error", e.getMessage());
        return n;
    }

    static CudaCheckpointer checkpointer(String backend) {
        GpuBackendSelector.Selection s = switch (backend) {
            case "auto" -> GpuBackendSelector.system().select();
            case "driver" -> {
                CudaDriver d = CudaDriver.load();
                yield new GpuBackendSelector.Selection(d, java.util.Optional.of(d), "");
            }
            case "cli" -> new GpuBackendSelector(() -> {
                throw new CudaUnavailableException("driver API not used (--backend cli)");
            }, () -> CudaCheckpointBinary.findOnPath(System.getenv("PATH")), CommandRunner.system(),
                    Duration.ofMinutes(5)).select();
            default -> throw new CommandLine.ParameterException(new CommandLine(new CudaCheckpointProbe()),
                    "--backend must be auto, driver or cli");
        };
        return new CudaCheckpointer(s.backend(), s.driver(), MpsDetector.system(), new CudaProcesses(ProcFs.system()));
    }

    /** The process a checkpoint step acts on, and through which backend: shared by {@code step} and {@code cycle}. */
    static final class Target {
        @Option(names = "--pid", required = true, description = "process to act on")
        long pid;

        @Option(names = "--timeout-ms", defaultValue = "10000", description = "lock timeout")
        int timeoutMs;

        @Option(names = "--backend", defaultValue = "auto", description = "auto, driver or cli")
        String backend;

        CudaCheckpointer checkpointer() {
            return CudaCheckpointProbe.checkpointer(backend);
        }

        /** The start of a step's JSON report: the process and the backend that acts on it. */
        ObjectNode report(CudaCheckpointer c) {
            ObjectNode n = JSON.createObjectNode();
            n.put("pid", pid);
            n.put("backend", c.backend().name());
            return n;
        }
    }

    @Command(name = "info", description = "Driver version, GPUs, and which backend would be used.")
    static final class Info implements Callable<Integer> {
        @Option(names = "--backend", defaultValue = "auto", description = "auto, driver or cli")
        String backend;

        @Override
        public Integer call() {
            try {
                long t0 = System.nanoTime();
                CudaCheckpointer c = checkpointer(backend);
                ObjectNode n = JSON.createObjectNode();
                n.put("ok", true);
                n.put("backend", c.backend().name());
                n.put("loadAndInitMs", (System.nanoTime() - t0) / 1e6);
                n.put("cudaDriverVersion", CudaDriver.formatVersion(c.backend().driverVersion()));
                ArrayNode gpus = n.putArray("gpus");
                c.gpus().forEach(g -> gpus.add(JSON.valueToTree(g)));
                return print(n, 0);
            } catch (CudaUnavailableException e) {
                return print(unavailable(e), 2);
            }
        }
    }

    @Command(name = "step", description = "One step on a process: state, lock, checkpoint, restore, unlock, restore-tid.")
    static final class Step implements Callable<Integer> {
        @CommandLine.Parameters(index = "0", description = "state, lock, checkpoint, restore, unlock or restore-tid")
        String step;

        @CommandLine.Mixin
        Target target;

        @Option(names = "--skip-mps-check", description = "call the driver even for an MPS client (to see what it says)")
        boolean skipMpsCheck;

        @Override
        public Integer call() {
            CudaCheckpointer c;
            try {
                c = target.checkpointer();
            } catch (CudaUnavailableException e) {
                return print(unavailable(e), 2);
            }
            long pid = target.pid;
            int timeoutMs = target.timeoutMs;
            ObjectNode n = target.report(c);
            n.put("step", step);
            long t0 = System.nanoTime();
            try {
                switch (step) {
                    case "state" -> n.put("state", c.state(pid).name());
                    case "lock" -> {
                        if (skipMpsCheck) {
                            c.backend().lock((int) pid, timeoutMs);
                        } else {
                            c.lock(pid, Duration.ofMillis(timeoutMs));
                        }
                    }
                    case "checkpoint" -> c.checkpoint(pid);
                    case "restore" -> c.restore(pid);
                    case "unlock" -> c.unlock(pid);
                    case "restore-tid" -> {
                        if (!(c.backend() instanceof CudaDriver d)) {
                            throw new GpuCheckpointException("restore-tid needs the driver API backend");
                        }
                        n.put("restoreThreadId", d.restoreThreadId((int) pid));
                    }
                    default -> throw new GpuCheckpointException("unknown step '" + step + "'");
                }
                n.put("ms", (System.nanoTime() - t0) / 1e6);
                n.put("ok", true);
            } catch (GpuCheckpointException | CudaException e) {
                n.put("ms", (System.nanoTime() - t0) / 1e6);
                n.put("ok", false);
                n.put("error", e.getMessage());
            }
            try {
                n.put("stateAfter", c.state(pid).name());
            } catch (GpuCheckpointException | CudaException e) {
                n.put("stateAfter", "unknown: " + e.getMessage());
            }
            return print(n, n.get("ok").asBoolean() ? 0 : 1);
        }
    }

    @Command(name = "cycle", description = "lock, checkpoint, restore, unlock in one process, each timed.")
    static final class Cycle implements Callable<Integer> {
        @CommandLine.Mixin
        Target target;

        @Override
        public Integer call() {
            CudaCheckpointer c;
            try {
                c = target.checkpointer();
            } catch (CudaUnavailableException e) {
                return print(unavailable(e), 2);
            }
            long pid = target.pid;
            int timeoutMs = target.timeoutMs;
            ObjectNode n = target.report(c);
            ArrayNode steps = n.putArray("steps");
            for (String step : List.of("lock", "checkpoint", "restore", "unlock")) {
                ObjectNode s = steps.addObject();
                s.put("step", step);
                long t0 = System.nanoTime();
                try {
                    switch (step) {
                        case "lock" -> c.lock(pid, Duration.ofMillis(timeoutMs));
                        case "checkpoint" -> c.checkpoint(pid);
                        case "restore" -> c.restore(pid);
                        default -> c.unlock(pid);
                    }
                    s.put("ms", (System.nanoTime() - t0) / 1e6);
                    s.put("stateAfter", c.state(pid).name());
                } catch (GpuCheckpointException e) {
                    s.put("ms", (System.nanoTime() - t0) / 1e6);
                    s.put("error", e.getMessage());
                    n.put("ok", false);
                    return print(n, 1);
                }
            }
            n.put("ok", true);
            return print(n, 0);
        }
    }

    @Command(name = "mps", description = "MPS daemon status and whether the process would be refused as an MPS client.")
    static final class Mps implements Callable<Integer> {
        @Option(names = "--pid", required = true)
        int pid;

        @Override
        public Integer call() {
            MpsDetector d = MpsDetector.system();
            ObjectNode n = JSON.createObjectNode();
            MpsDetector.DaemonStatus daemon = d.daemon();
            n.put("pid", pid);
            n.put("daemonRunning", daemon.running());
            n.putPOJO("daemonPids", daemon.daemonPids());
            n.put("pipeDirectory", daemon.pipeDirectory());
            n.putPOJO("clientEvidence", d.clientEvidence(pid));
            try {
                d.requireNotMpsClient(pid);
                n.put("refused", false);
            } catch (MpsClientException e) {
                n.put("refused", true);
                n.put("error", e.getMessage());
            }
            return print(n, 0);
        }
    }

    @Command(name = "cuda-pids", description = "The process tree under a root PID and which of its processes use CUDA.")
    static final class CudaPids implements Callable<Integer> {
        @Option(names = "--root", required = true)
        int root;

        @Override
        public Integer call() {
            CudaProcesses p = new CudaProcesses(ProcFs.system());
            ObjectNode n = JSON.createObjectNode();
            n.putPOJO("tree", p.tree(root));
            n.putPOJO("cuda", p.cudaProcessesInTree(root));
            return print(n, 0);
        }
    }
}
