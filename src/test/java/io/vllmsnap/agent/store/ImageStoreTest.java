package io.vllmsnap.agent.store;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class ImageStoreTest {

    @TempDir
    Path dir;

    /** A work directory with a container's root still bound into it must never be emptied through that mount. */
    @Test
    void deletingATreeNeverReachesIntoABindMount() throws Exception {
        Path precious = Files.createDirectories(dir.resolve("someone-elses-root"));
        Files.writeString(precious.resolve("keep.txt"), "data");
        Path work = Files.createDirectories(dir.resolve("work/job-1"));
        Files.writeString(work.resolve("restore.log"), "log");
        Path mountPoint = Files.createDirectories(work.resolve("root"));
        run("mount", "--bind", precious.toString(), mountPoint.toString());
        try {
            assertThatThrownBy(() -> ImageStore.deleteTree(dir.resolve("work"))).isInstanceOf(IOException.class)
                    .hasMessageContaining("mounted");
            assertThat(precious.resolve("keep.txt")).hasContent("data");
            assertThat(work.resolve("restore.log")).doesNotExist();
        } finally {
            run("umount", mountPoint.toString());
        }
        ImageStore.deleteTree(dir.resolve("work"));
        assertThat(dir.resolve("work")).doesNotExist();
        assertThat(precious.resolve("keep.txt")).hasContent("data");
    }

    private static void run(String... cmd) throws Exception {
        Process p = new ProcessBuilder(List.of(cmd)).redirectErrorStream(true).start();
        assertThat(p.waitFor(30, TimeUnit.SECONDS)).isTrue();
        assertThat(p.exitValue()).as(new String(p.getInputStream().readAllBytes())).isZero();
    }
}
