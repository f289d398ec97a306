package io.vllmsnap.cuda;

import static java.lang.foreign.MemoryLayout.PathElement.groupElement;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The structs must match cuda.h byte for byte, or the driver reads garbage (or reserved fields that are not zero). */
class CheckpointArgsTest {

    @Test
    void layoutsMatchCudaHeaderSizesAndOffsets() {
        assertThat(CheckpointArgs.LOCK.byteSize()).isEqualTo(64);
        assertThat(CheckpointArgs.LOCK.byteOffset(groupElement("timeoutMs"))).isZero();
        assertThat(CheckpointArgs.LOCK.byteOffset(groupElement("reserved0"))).isEqualTo(4);
        assertThat(CheckpointArgs.LOCK.byteOffset(groupElement("reserved1"))).isEqualTo(8);
        assertThat(CheckpointArgs.CHECKPOINT.byteSize()).isEqualTo(64);
        assertThat(CheckpointArgs.UNLOCK.byteSize()).isEqualTo(64);
        assertThat(CheckpointArgs.GPU_PAIR.byteSize()).isEqualTo(32);
        assertThat(CheckpointArgs.RESTORE.byteSize()).isEqualTo(64);
        assertThat(CheckpointArgs.RESTORE.byteOffset(groupElement("gpuPairs"))).isZero();
        assertThat(CheckpointArgs.RESTORE.byteOffset(groupElement("gpuPairsCount"))).isEqualTo(8);
        assertThat(CheckpointArgs.RESTORE.byteOffset(groupElement("reserved"))).isEqualTo(12);
        assertThat(CheckpointArgs.RESTORE.byteOffset(groupElement("reserved1"))).isEqualTo(56);
    }

    @Test
    void lockArgsCarryTheTimeoutAndZeroedReservedFields() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment s = CheckpointArgs.lock(arena, 15000);
            assertThat(s.get(ValueLayout.JAVA_INT, 0)).isEqualTo(15000);
            for (long off = 4; off < 64; off++) {
                assertThat(s.get(ValueLayout.JAVA_BYTE, off)).as("byte %d", off).isZero();
            }
        }
    }

    @Test
    void negativeLockTimeoutIsRejected() {
        try (Arena arena = Arena.ofConfined()) {
            assertThatThrownBy(() -> CheckpointArgs.lock(arena, -1)).isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("lock timeout");
        }
    }

    @Test
    void restoreArgsPointToTheGpuPairArray() {
        byte[] a = GpuPair.parseUuid("GPU-3a34af56-e2e8-164a-8e46-3b4aa6c7b772");
        byte[] b = GpuPair.parseUuid("00112233-4455-6677-8899-aabbccddeeff");
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment s = CheckpointArgs.restore(arena, List.of(new GpuPair(a, b), new GpuPair(b, a)));
            assertThat(s.get(ValueLayout.JAVA_INT, 8)).isEqualTo(2);
            MemorySegment pairs = s.get(ValueLayout.ADDRESS, 0).reinterpret(64);
            assertThat(pairs.asSlice(0, 16).toArray(ValueLayout.JAVA_BYTE)).isEqualTo(a);
            assertThat(pairs.asSlice(16, 16).toArray(ValueLayout.JAVA_BYTE)).isEqualTo(b);
            assertThat(pairs.asSlice(32, 16).toArray(ValueLayout.JAVA_BYTE)).isEqualTo(b);
            assertThat(s.asSlice(12, 52).toArray(ValueLayout.JAVA_BYTE)).containsOnly((byte) 0);

            MemorySegment none = CheckpointArgs.restore(arena, List.of());
            assertThat(none.get(ValueLayout.ADDRESS, 0)).isEqualTo(MemorySegment.NULL);
            assertThat(none.get(ValueLayout.JAVA_INT, 8)).isZero();
        }
    }

    @Test
    void gpuUuidsRoundTripInNvidiaSmiForm() {
        String uuid = "GPU-3a34af56-e2e8-164a-8e46-3b4aa6c7b772";
        assertThat(GpuPair.formatUuid(GpuPair.parseUuid(uuid))).isEqualTo(uuid);
        assertThatThrownBy(() -> GpuPair.parseUuid("GPU-1234")).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("not a GPU UUID");
    }
}
