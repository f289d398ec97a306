package io.vllmsnap.criu;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class ImageMapFillTest {

    @Test
    void onUnlessSwitchedOff() {
        assertThat(ImageMapFill.decide("")).isTrue();
        assertThat(ImageMapFill.decide("ON")).isTrue();
        assertThat(ImageMapFill.decide("off")).isFalse();
        assertThat(ImageMapFill.decide("false")).isFalse();
        assertThatThrownBy(() -> ImageMapFill.decide("auto")).hasMessageContaining("on or off").hasMessageContaining("auto");
    }

    @Test
    void criuGetsTheSwitchInItsEnvironment() {
        assertThat(new Criu("criu").withMapFill(true).restoreEnv()).containsEntry(ImageMapFill.CRIU_ENV, "1");
        assertThat(new Criu("criu").withMapFill(false).withHugePageFill(true).restoreEnv())
                .containsEntry(ImageMapFill.CRIU_ENV, "0").containsEntry(HugePageFill.CRIU_ENV, "1");
    }

    @Test
    void findsAMappedPagesFileAmongAProcesssMappings() {
        List<String> restored = List.of(
                "5645e000-56460000 r--p 00000000 fe:00 123  /usr/bin/python3.11",
                "7fb64b0ff000-7fb68b200000 rw-p 001c2000 fe:00 2262536    /var/lib/vllmsnap/images/a/criu/pages-1.img",
                "7ffda0816000-7ffda0837000 rw-p 00000000 00:00 0          [stack]");
        assertThat(ImageMapFill.mappedImageFile(restored)).contains("/var/lib/vllmsnap/images/a/criu/pages-1.img");
        assertThat(ImageMapFill.mappedImageFile(List.of(
                "7fb64b0ff000-7fb68b200000 rw-p 001c2000 fe:00 2262536    /tmp/x/criu/pages-12.img (deleted)")))
                .contains("/tmp/x/criu/pages-12.img");
        assertThat(ImageMapFill.mappedImageFile(List.of(
                "7fb64b0ff000-7fb68b200000 rw-p 00000000 00:00 0",
                "7fb68b920000-7fb68b9b7000 r--p 00000000 fe:00 99   /data/pages-of-a-book.img",
                "7fb68b920000-7fb68b9b7000 r--p 00000000 fe:00 99   /models/pages-1.imgx")))
                .as("only CRIU's page files count").isEmpty();
    }
}
