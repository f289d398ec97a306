package io.vllmsnap.agent;

import io.fabric8.kubernetes.client.KubernetesClient;
import io.micrometer.core.instrument.MeterRegistry;
import io.quarkus.arc.DefaultBean;
import io.quarkus.runtime.StartupEvent;
import io.vllmsnap.agent.discovery.ContainerDiscovery;
import io.vllmsnap.agent.jobs.AgentMetrics;
import io.vllmsnap.agent.jobs.ContainerCheckpointer;
import io.vllmsnap.agent.jobs.JobRunner;
import io.vllmsnap.agent.container.CriuContainerCheckpointer;
import io.vllmsnap.criu.HugePageFill;
import io.vllmsnap.criu.ImageMapFill;
import io.vllmsnap.cuda.CudaCheckpointer;
import io.vllmsnap.agent.store.ImageStore;
import io.vllmsnap.agent.store.JobStore;
import io.vllmsnap.agent.web.ClientRateLimiter;
import io.vllmsnap.agent.web.TokenAuthenticator;
import jakarta.enterprise.inject.Instance;
import jakarta.enterprise.event.Observes;
import jakarta.enterprise.inject.Disposes;
import jakarta.enterprise.inject.Produces;
import jakarta.inject.Singleton;
import org.jboss.logging.Logger;

import java.io.IOException;
import java.time.Clock;

/** Wires the agent's plain classes together; they start working only in agent mode. */
@Singleton
public class AgentBeans {

    void onStart(@Observes StartupEvent event, AgentConfig config, Instance<JobRunner> runner, ImageStore images,
            AgentMetrics metrics) throws IOException {
        if (config.enabled()) {
            metrics.imageStorage(images::freeBytes, images::totalBytes);
            // Before the API answers: jobs cut off by the last stop are failed and cleaned, queued ones resumed.
            runner.get().recover();
            // Decide now (with map fill off: a short memory probe) rather than in the first restore's latency.
            Logger log = Logger.getLogger(AgentBeans.class);
            if (ImageMapFill.fromEnvironment()) {
                log.infof("restores map memory from the image, copy-on-write (%s=on)", ImageMapFill.SETTING_ENV);
            } else {
                HugePageFill.Decision fill = HugePageFill.fromEnvironment();
                log.infof("restores copy memory from the image into %s pages (%s=off; %s)",
                        fill.enabled() ? "huge" : "4 KiB", ImageMapFill.SETTING_ENV, fill.reason());
            }
        }
    }

    @Produces
    @Singleton
    ImageStore imageStore(AgentConfig config) {
        return new ImageStore(config.storageRoot().resolve("images"));
    }

    @Produces
    @Singleton
    JobStore jobStore(AgentConfig config) {
        return new JobStore(config.storageRoot().resolve("jobs"), config.jobRetention(), Clock.systemUTC());
    }

    @Produces
    @Singleton
    ContainerDiscovery discovery(AgentConfig config) {
        return new ContainerDiscovery(config.cgroupRoot(), config.procRoot());
    }

    @Produces
    @Singleton
    AgentMetrics metrics(MeterRegistry registry) {
        return new AgentMetrics(registry);
    }

    @Produces
    @Singleton
    @DefaultBean
    ContainerCheckpointer checkpointer(AgentConfig config) {
        // the driver's checkpoint API where libcuda (or cuda-checkpoint) is found, else no process counts as CUDA
        return new CriuContainerCheckpointer(config.criuBinary(), config.cgroupRoot(), config.criuTimeout(),
                config.readyTimeout(), CudaCheckpointer.forThisNode());
    }

    @Produces
    @Singleton
    JobRunner runner(AgentConfig config, JobStore jobs, ImageStore images, ContainerDiscovery discovery,
            ContainerCheckpointer checkpointer, AgentMetrics metrics) {
        return new JobRunner(jobs, images, discovery, checkpointer, metrics, config.storageRoot().resolve("work"),
                config.maxConcurrentJobs(), Clock.systemUTC());
    }

    void closeRunner(@Disposes JobRunner runner) {
        runner.close();
    }

    @Produces
    @Singleton
    TokenAuthenticator authenticator(KubernetesClient client, AgentConfig config) {
        return new TokenAuthenticator(client, config.allowedUser(), config.tokenAudience(), config.tokenCacheTtl(),
                config.tokenCacheSize(), Clock.systemUTC());
    }

    @Produces
    @Singleton
    ClientRateLimiter clientRateLimiter(AgentConfig config) {
        return new ClientRateLimiter(config.clientRequestsPerSecond(), config.clientBurst(), Clock.systemUTC());
    }
}
