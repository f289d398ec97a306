package io.vllmsnap.cuda;

import java.util.HexFormat;

/** Maps a GPU the process was checkpointed on (old UUID) to the GPU to restore it onto (new UUID). */
public record GpuPair(byte[] oldUuid, byte[] newUuid) {
    public GpuPair {
        if (oldUuid.length != 16 || newUuid.length != 16) {
            throw new IllegalArgumentException("a GPU UUID has 16 bytes");
        }
        oldUuid = oldUuid.clone();
        newUuid = newUuid.clone();
    }

    /** Parses nvidia-smi's form "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (the "GPU-" prefix is optional). */
    public static byte[] parseUuid(String text) {
        String hex = text.strip().replaceFirst("^(?i)GPU-", "").replace("-", "");
        if (hex.length() != 32) {
            throw new IllegalArgumentException("not a GPU UUID: '" + text + "'");
        }
        return HexFormat.of().parseHex(hex);
    }

    /** Formats 16 UUID bytes as nvidia-smi does. */
    public static String formatUuid(byte[] uuid) {
        String h = HexFormat.of().formatHex(uuid);
        return "GPU-" + h.substring(0, 8) + "-" + h.substring(8, 12) + "-" + h.substring(12, 16) + "-"
                + h.substring(16, 20) + "-" + h.substring(20);
    }
}
