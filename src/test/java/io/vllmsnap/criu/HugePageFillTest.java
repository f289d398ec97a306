package io.vllmsnap.criu;

import org.junit.jupiter.api.Test;

import java.io.IOException;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class HugePageFillTest {

    @Test
    void explicitSettingsNeedNoMeasurement() {
        HugePageFill.Probe never = () -> {
            throw new AssertionError("must not measure");
        };
        assertThat(HugePageFill.decide("on", never).enabled()).isTrue();
        assertThat(HugePageFill.decide("OFF", never).enabled()).isFalse();
        assertThatThrownBy(() -> HugePageFill.decide("sometimes", never))
                .hasMessageContaining("on, off or auto").hasMessageContaining("sometimes");
    }

    @Test
    void autoUsesHugePagesOnlyWhereTheyClearlyWin() {
        assertThat(HugePageFill.decide("auto", () -> new HugePageFill.Measurement(1.5, 5.0, "madvise")).enabled())
                .isTrue();
        assertThat(HugePageFill.decide("auto", () -> new HugePageFill.Measurement(2.8, 0.5, "madvise")).enabled())
                .isFalse();
        assertThat(HugePageFill.decide("auto", () -> new HugePageFill.Measurement(2.0, 2.2, "madvise")).enabled())
                .as("a 10%% gain is noise, not worth the memory huge pages can add").isFalse();
        assertThat(HugePageFill.decide("auto", () -> new HugePageFill.Measurement(1.0, 9.0, "never")).enabled())
                .as("the kernel ignores MADV_HUGEPAGE when THP is off").isFalse();
        HugePageFill.Decision failed = HugePageFill.decide("", () -> {
            throw new IOException("no /sys");
        });
        assertThat(failed.enabled()).isFalse();
        assertThat(failed.reason()).contains("no /sys");
    }

    @Test
    void readsTheKernelModeInBrackets() {
        assertThat(HugePageFill.thpMode("always [madvise] never\n")).isEqualTo("madvise");
        assertThat(HugePageFill.thpMode("[always] madvise never")).isEqualTo("always");
        assertThat(HugePageFill.thpMode("garbage")).isEqualTo("never");
    }

    @Test
    void measuresThisHost() throws IOException {
        HugePageFill.Measurement m = HugePageFill.measure();
        assertThat(m.basePagesGBs()).isPositive();
        assertThat(m.hugePagesGBs()).isPositive();
        assertThat(m.thpMode()).isIn("always", "madvise", "never");
    }

    @Test
    void criuGetsTheSwitchInItsEnvironment() {
        Criu copying = new Criu("criu").withMapFill(false);
        assertThat(copying.withHugePageFill(true).restoreEnv()).containsEntry(HugePageFill.CRIU_ENV, "1");
        assertThat(copying.withHugePageFill(false).restoreEnv()).containsEntry(HugePageFill.CRIU_ENV, "0");
        assertThat(new Criu("criu").withMapFill(true).withHugePageFill(true).restoreEnv())
                .as("map fill copies little; huge pages made it slower").containsEntry(HugePageFill.CRIU_ENV, "0");
    }
}
