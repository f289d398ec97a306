package io.vllmsnap.agent.container;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class MountTableTest {

    @Test
    void aMountSourceIsNeverTakenFromAnotherJobsBindUnderTheWorkRoot(@TempDir Path dir) throws Exception {
        Path mountinfo = dir.resolve("mountinfo");
        Files.writeString(mountinfo, """
                21 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
                22 21 0:5 / /dev/shm rw shared:2 - tmpfs tmpfs rw
                90 21 8:1 / /var/lib/vllmsnap/work/restore-a/root rw,relatime shared:1 - ext4 /dev/sda1 rw
                """);
        MountTable.Entry weightsInPlaceholder = new MountTable.Entry("8:1", "/models", "/models", "ext4");
        MountTable all = MountTable.read(mountinfo);

        assertThat(all.pathOf(weightsInPlaceholder)).contains("/var/lib/vllmsnap/work/restore-a/root/models");
        MountTable ours = all.without("/var/lib/vllmsnap/work");
        assertThat(ours.pathOf(weightsInPlaceholder)).contains("/models");
        assertThat(ours.at("/dev/shm")).isPresent();
        assertThat(ours.entries()).hasSize(2);
    }
}
