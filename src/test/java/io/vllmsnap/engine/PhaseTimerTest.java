package io.vllmsnap.engine;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

class PhaseTimerTest {

    @Test
    void backToBackPhasesCountTheWorkBetweenStepsAndAddUpToTheTotal() throws Exception {
        List<String> started = new ArrayList<>();
        PhaseTimer timer = PhaseTimer.backToBack((phase, detail) -> started.add(phase));
        Thread.sleep(30); // before the first step: belongs to the first phase
        timer.time("prepare", "", () -> { });
        Thread.sleep(30); // between two steps: belongs to the second
        int answer = timer.time("restore", "", () -> 42);
        double total = timer.totalSeconds();

        assertThat(answer).isEqualTo(42);
        assertThat(started).containsExactly("prepare", "restore");
        assertThat(timer.phases().keySet()).containsExactly("prepare", "restore");
        assertThat(timer.phases().get("prepare")).isGreaterThanOrEqualTo(0.03);
        assertThat(timer.phases().get("restore")).isGreaterThanOrEqualTo(0.03);
        assertThat(sum(timer)).isCloseTo(total, within(0.005));
    }

    @Test
    void byDefaultEachPhaseIsItsStepAlone() throws Exception {
        PhaseTimer timer = new PhaseTimer(Progress.NONE);
        timer.time("prepare", "", () -> { });
        Thread.sleep(30); // outside every phase
        timer.time("dump", "", () -> { });

        assertThat(sum(timer)).isLessThanOrEqualTo(timer.totalSeconds() - 0.03);
    }

    @Test
    void aFailedStepStillEndsItsPhase() {
        PhaseTimer timer = PhaseTimer.backToBack(Progress.NONE);
        assertThatThrownBy(() -> timer.time("restore", "", () -> {
            throw new EngineException("criu failed");
        })).hasMessage("criu failed");
        assertThat(timer.phases()).containsOnlyKeys("restore");
    }

    private static double sum(PhaseTimer timer) {
        return timer.phases().values().stream().mapToDouble(Double::doubleValue).sum();
    }
}
