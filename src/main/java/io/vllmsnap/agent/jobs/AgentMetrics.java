package io.vllmsnap.agent.jobs;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;

import java.time.Duration;
import java.util.function.Supplier;

/** The agent's meters, exported at /q/metrics (names in Prometheus form: vllmsnap_agent_...). */
public class AgentMetrics {

    private final MeterRegistry registry;

    public AgentMetrics(MeterRegistry registry) {
        this.registry = registry;
    }

    public void queueDepth(Supplier<Number> depth) {
        Gauge.builder("vllmsnap.agent.queue.depth", depth).description("Jobs accepted and waiting for a free slot")
                .strongReference(true).register(registry);
    }

    /** Free and total bytes of the image storage (the alert "storage nearly full" and the dashboard divide them). */
    public void imageStorage(Supplier<Number> freeBytes, Supplier<Number> sizeBytes) {
        Gauge.builder("vllmsnap.agent.image.storage.free", freeBytes).description("Free bytes on the node's image storage")
                .baseUnit("bytes").strongReference(true).register(registry);
        Gauge.builder("vllmsnap.agent.image.storage.size", sizeBytes).description("Size of the node's image storage")
                .baseUnit("bytes").strongReference(true).register(registry);
    }

    public void phase(String kind, String phase, long millis) {
        Timer.builder("vllmsnap.agent.job.phase.duration").description("Duration of one phase of an agent job")
                .tag("kind", kind).tag("phase", phase).register(registry).record(Duration.ofMillis(millis));
    }

    public void job(String kind, String result, long millis) {
        Timer.builder("vllmsnap.agent.job.duration").description("Duration of an agent job, accepted to done")
                .tag("kind", kind).tag("result", result).register(registry).record(Duration.ofMillis(millis));
    }

    public void bytesWritten(long bytes) {
        Counter.builder("vllmsnap.agent.image.written.bytes").description("Image bytes written by snapshots")
                .baseUnit("bytes").register(registry).increment(bytes);
    }

    public void bytesRead(long bytes) {
        Counter.builder("vllmsnap.agent.image.read.bytes").description("Image bytes read by restores")
                .baseUnit("bytes").register(registry).increment(bytes);
    }

    public void authFailure(String reason) {
        Counter.builder("vllmsnap.agent.auth.failures").description("API calls refused by authentication or authorisation")
                .tag("reason", reason).register(registry).increment();
    }
}
