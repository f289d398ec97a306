package io.vllmsnap.image.store;

import io.vllmsnap.image.ImageException;
import io.vllmsnap.image.ImageException.Reason;
import io.vllmsnap.image.ImageFiles;
import io.vllmsnap.image.ImageRef;
import io.vllmsnap.image.TestImages;
import io.vllmsnap.image.cache.NodeImageCache;
import org.junit.jupiter.api.Test;

import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The volume store on a real directory standing in for a ReadWriteMany volume. */
class VolumeStoreTest extends StoreContractTest {

    private Path volume() {
        return tmp.resolve("shared-volume");
    }

    @Override
    protected ImageStoreBackend store() {
        return new VolumeStore(volume(), 4);
    }

    @Override
    protected void damage(ImageRef ref, ImageFiles.Entry entry, Damage damage) throws Exception {
        Path f = volume().resolve(ref.namespace()).resolve(ref.name()).resolve(entry.path());
        switch (damage) {
            case FLIP_BYTE -> TestImages.flipByte(f, entry.size() / 2);
            case TRUNCATE -> {
                try (FileChannel ch = FileChannel.open(f, StandardOpenOption.WRITE)) {
                    ch.truncate(entry.size() / 3);
                }
            }
            case DELETE -> Files.delete(f);
        }
    }

    @Override
    protected void storeUnsigned(ImageRef ref, Path imageDir) throws Exception {
        store().publish(ref, imageDir, TransferListener.NONE);
        Files.delete(volume().resolve(ref.namespace()).resolve(ref.name()).resolve(ImageFiles.SIGNATURE));
    }

    @Override
    protected Map<String, String> storedBytes(ImageRef ref) throws Exception {
        return treeDigests(volume().resolve(ref.namespace()).resolve(ref.name()));
    }

    @Test
    void publishLeavesOnlyTheWholeImageInTheVolume() throws Exception {
        Path src = source("img", 3 << 20);
        store().publish(ref, src, TransferListener.NONE);
        try (var entries = Files.list(volume().resolve("team-a"))) {
            assertThat(entries.map(p -> p.getFileName().toString())).containsExactly("snap-1");
        }
        assertThat(treeDigests(volume().resolve("team-a/snap-1"))).isEqualTo(treeDigests(src));
    }

    @Test
    void localFileThatNoLongerMatchesItsManifestIsNotPublished() throws Exception {
        Path src = source("img", 2 << 20);
        TestImages.flipByte(src.resolve("criu/pages-1.img"), 17);
        assertThatThrownBy(() -> store().publish(ref, src, TransferListener.NONE))
                .isInstanceOfSatisfying(ImageException.class, e -> assertThat(e.reason()).isEqualTo(Reason.Tampered));
        assertThat(store().exists(ref)).isFalse();
        try (var entries = Files.list(volume().resolve("team-a"))) {
            assertThat(entries).isEmpty(); // no staging directory left behind
        }
    }

    @Test
    void linkPlantedInTheVolumeIsNotFollowed() throws Exception {
        Path src = source("img", 1 << 20);
        store().publish(ref, src, TransferListener.NONE);
        Path stored = volume().resolve("team-a/snap-1/criu/core-1.img");
        Path secret = Files.writeString(tmp.resolve("node-secret"), "x".repeat(1234));
        Files.delete(stored);
        Files.createSymbolicLink(stored, secret);
        NodeImageCache cache = cache("links", 1L << 30);
        pullFails(cache, Reason.UnexpectedFile);
        assertNothingHalfWritten(cache);
    }
}
