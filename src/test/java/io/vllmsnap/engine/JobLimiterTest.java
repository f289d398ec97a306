package io.vllmsnap.engine;

import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

class JobLimiterTest {

    @Test
    void secondJobOnTheSameSourceIsRefusedNotQueued() throws Exception {
        JobLimiter limiter = new JobLimiter(4);
        try (JobLimiter.Permit ignored = limiter.acquire("process 42", Duration.ofSeconds(1))) {
            assertThatThrownBy(() -> limiter.acquire("process 42", Duration.ofSeconds(1)))
                    .isInstanceOf(SourceBusyException.class).hasMessageContaining("process 42");
        }
        limiter.acquire("process 42", Duration.ofSeconds(1)).close(); // free again once the first finished
    }

    @Test
    void jobsBeyondTheLimitWaitInLineAndRunWhenASlotFrees() throws Exception {
        JobLimiter limiter = new JobLimiter(1);
        JobLimiter.Permit first = limiter.acquire("a", Duration.ofSeconds(1));
        CompletableFuture<JobLimiter.Permit> second = CompletableFuture.supplyAsync(() -> {
            try {
                return limiter.acquire("b", Duration.ofSeconds(30));
            } catch (EngineException e) {
                throw new RuntimeException(e);
            }
        });
        await().atMost(Duration.ofSeconds(5)).until(() -> limiter.queued() == 1);
        assertThat(second).isNotDone();
        first.close();
        second.get(5, TimeUnit.SECONDS).close();
        assertThat(limiter.running()).isZero();
    }

    @Test
    void queuedJobGivesUpWithAClearErrorAfterItsWait() throws Exception {
        JobLimiter limiter = new JobLimiter(1);
        try (JobLimiter.Permit ignored = limiter.acquire("a", Duration.ofSeconds(1))) {
            assertThatThrownBy(() -> limiter.acquire("b", Duration.ofMillis(100)))
                    .isInstanceOf(EngineException.class).hasMessageContaining("no job slot free");
        }
        limiter.acquire("b", Duration.ofSeconds(1)).close(); // the refused job did not keep its source claimed
    }
}
