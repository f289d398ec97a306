package io.vllmsnap.criu;

import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class ChildProcessTest {

    @Test
    void aCommandWhoseSubjectWentAwayIsKilledAfterTheGraceNotAtItsTimeout() throws Exception {
        Process subject = new ProcessBuilder("sleep", "60").start();
        long pid = subject.pid();
        assertThat(ChildProcess.processGone(pid)).isFalse();
        subject.destroyForcibly().waitFor();
        assertThat(ChildProcess.processGone(pid)).as("reaped: no /proc entry").isTrue();

        long t0 = System.nanoTime();
        assertThatThrownBy(() -> ChildProcess.run(List.of("sleep", "60"), Map.of(), Duration.ofSeconds(60),
                new ChildProcess.Watch(() -> ChildProcess.processGone(pid), "the dumped process " + pid,
                        Duration.ofSeconds(1))))
                .isInstanceOf(ChildProcess.TimeoutException.class)
                .hasMessageContaining("the dumped process " + pid + " went away");
        assertThat(Duration.ofNanos(System.nanoTime() - t0)).isLessThan(Duration.ofSeconds(10));
    }

    @Test
    void aCommandThatFinishesWithinTheGraceKeepsItsResult() throws Exception {
        ChildProcess.Result r = ChildProcess.run(List.of("sh", "-c", "sleep 0.5; echo done"), Map.of(),
                Duration.ofSeconds(30), new ChildProcess.Watch(() -> true, "anything", Duration.ofSeconds(5)));
        assertThat(r.ok()).isTrue();
        assertThat(r.output()).contains("done");
    }

    @Test
    void theTimeoutStillHolds() {
        assertThatThrownBy(() -> ChildProcess.run(List.of("sleep", "30"), Duration.ofMillis(500)))
                .isInstanceOf(ChildProcess.TimeoutException.class).hasMessageContaining("did not finish within");
    }
}
