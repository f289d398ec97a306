package io.vllmsnap.agent;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class IdsTest {

    @ParameterizedTest
    @ValueSource(strings = {"../etc", "..", "a/b", "UPPER", "a_b", "-lead", "trail-", "", " x", "a.b",
            "x234567890123456789012345678901234567890123456789012345678901234"})
    void rejectsAnythingButADnsLabel(String bad) {
        assertThatThrownBy(() -> Ids.dnsLabel("imageId", bad)).isInstanceOf(InvalidIdException.class).hasMessageContaining("imageId");
    }

    @Test
    void acceptsDnsLabels() {
        assertThat(Ids.dnsLabel("imageId", "qwen-warm-1")).isEqualTo("qwen-warm-1");
        assertThat(Ids.dnsLabel("imageId", "x23456789012345678901234567890123456789012345678901234567890123")).hasSize(63);
    }

    @Test
    void podUidMustBeALowercaseUuid() {
        Ids.uid("podUid", "3f2b8c1e-9d4a-4b6e-8f7a-1c2d3e4f5a6b");
        assertThatThrownBy(() -> Ids.uid("podUid", "3F2B8C1E-9D4A-4B6E-8F7A-1C2D3E4F5A6B")).isInstanceOf(InvalidIdException.class);
        assertThatThrownBy(() -> Ids.uid("podUid", "../3f2b8c1e-9d4a-4b6e-8f7a-1c2d3e4f5a6b")).isInstanceOf(InvalidIdException.class);
    }

    @Test
    void containerIdKeepsRuntimeAndHex() {
        String hex = "a".repeat(64);
        assertThat(Ids.containerId("containerId", "containerd://" + hex)).isEqualTo(new Ids.ContainerRef("containerd", hex));
        assertThat(Ids.containerId("containerId", "cri-o://" + hex).runtime()).isEqualTo("cri-o");
        assertThat(Ids.containerId("containerId", hex).runtime()).isEmpty();
        assertThatThrownBy(() -> Ids.containerId("containerId", "containerd://../../" + hex)).isInstanceOf(InvalidIdException.class);
        assertThatThrownBy(() -> Ids.containerId("containerId", "evil://" + hex)).isInstanceOf(InvalidIdException.class);
        assertThatThrownBy(() -> Ids.containerId("containerId", "containerd://" + "A".repeat(64))).isInstanceOf(InvalidIdException.class);
    }

    @Test
    void echoedValueIsShortAndPrintable() {
        assertThatThrownBy(() -> Ids.dnsLabel("jobId", "a\nb" + "x".repeat(500)))
                .hasMessageContaining("a?b").hasMessageNotContaining("x".repeat(100));
    }
}
