package io.vllmsnap.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;
import java.util.List;

/**
 * Memory layouts of the driver's checkpoint argument structs (cuda.h, CUDA 12.8+, x86-64). Each is 64 bytes;
 * the reserved fields must be zero, which a fresh segment from {@link Arena#allocate} guarantees.
 */
public final class CheckpointArgs {
    /** CUcheckpointLockArgs: unsigned int timeoutMs; unsigned int reserved0; cuuint64_t reserved1[7]. */
    public static final StructLayout LOCK = MemoryLayout.structLayout(
            JAVA_INT.withName("timeoutMs"),
            JAVA_INT.withName("reserved0"),
            MemoryLayout.sequenceLayout(7, JAVA_LONG).withName("reserved1"));

    /** CUcheckpointCheckpointArgs: cuuint64_t reserved[8]. */
    public static final StructLayout CHECKPOINT = MemoryLayout.structLayout(
            MemoryLayout.sequenceLayout(8, JAVA_LONG).withName("reserved"));

    /** CUcheckpointUnlockArgs: cuuint64_t reserved[8]. */
    public static final StructLayout UNLOCK = MemoryLayout.structLayout(
            MemoryLayout.sequenceLayout(8, JAVA_LONG).withName("reserved"));

    /** CUuuid: char bytes[16]. */
    public static final MemoryLayout UUID = MemoryLayout.sequenceLayout(16, ValueLayout.JAVA_BYTE);

    /** CUcheckpointGpuPair: CUuuid oldUuid; CUuuid newUuid. */
    public static final StructLayout GPU_PAIR = MemoryLayout.structLayout(
            UUID.withName("oldUuid"), UUID.withName("newUuid"));

    /**
     * CUcheckpointRestoreArgs: CUcheckpointGpuPair *gpuPairs; unsigned int gpuPairsCount;
     * char reserved[52 - sizeof(void*)]; cuuint64_t reserved1. The pair map exists from driver 580 on.
     */
    public static final StructLayout RESTORE = MemoryLayout.structLayout(
            ADDRESS.withName("gpuPairs"),
            JAVA_INT.withName("gpuPairsCount"),
            MemoryLayout.sequenceLayout(52 - ADDRESS.byteSize(), ValueLayout.JAVA_BYTE).withName("reserved"),
            JAVA_LONG.withName("reserved1"));

    private CheckpointArgs() {
    }

    public static MemorySegment lock(Arena arena, int timeoutMs) {
        if (timeoutMs < 0) {
            throw new IllegalArgumentException("lock timeout must be >= 0 ms (0 = wait forever), got " + timeoutMs);
        }
        MemorySegment s = arena.allocate(LOCK);
        s.set(JAVA_INT, LOCK.byteOffset(MemoryLayout.PathElement.groupElement("timeoutMs")), timeoutMs);
        return s;
    }

    public static MemorySegment checkpoint(Arena arena) {
        return arena.allocate(CHECKPOINT);
    }

    public static MemorySegment unlock(Arena arena) {
        return arena.allocate(UNLOCK);
    }

    /** Restore args; an empty pair list leaves every GPU where it was (a NULL pointer, count 0). */
    public static MemorySegment restore(Arena arena, List<GpuPair> pairs) {
        MemorySegment s = arena.allocate(RESTORE);
        if (!pairs.isEmpty()) {
            MemorySegment array = arena.allocate(GPU_PAIR, pairs.size());
            for (int i = 0; i < pairs.size(); i++) {
                MemorySegment pair = array.asSlice(i * GPU_PAIR.byteSize(), GPU_PAIR.byteSize());
                pair.asSlice(0, 16).copyFrom(MemorySegment.ofArray(pairs.get(i).oldUuid()));
                pair.asSlice(16, 16).copyFrom(MemorySegment.ofArray(pairs.get(i).newUuid()));
            }
            s.set(ADDRESS, RESTORE.byteOffset(MemoryLayout.PathElement.groupElement("gpuPairs")), array);
            s.set(JAVA_INT, RESTORE.byteOffset(MemoryLayout.PathElement.groupElement("gpuPairsCount")), pairs.size());
        }
        return s;
    }
}
