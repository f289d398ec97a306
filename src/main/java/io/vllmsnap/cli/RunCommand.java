package io.vllmsnap.cli;

import io.vllmsnap.engine.SourceLauncher;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "run", mixinStandardHelpOptions = true,
        description = "Start a command the way a container runtime would, so it can be snapshotted and restored as"
                + " copies: PID 1 and session leader of its own PID and mount namespaces, stdio on /dev/null."
                + " Prints the PID to pass to `vllmsnap snapshot --pid`.")
final class RunCommand implements Callable<Integer> {
    @Parameters(arity = "1..*", paramLabel = "COMMAND", description = "command and arguments (put -- before them)")
    List<String> command;

    @Override
    public Integer call() throws Exception {
        SourceLauncher.Source s = SourceLauncher.start(command, Path.of("").toAbsolutePath());
        System.out.println(s.pid());
        System.err.println("started " + String.join(" ", command) + " as PID " + s.pid()
                + "; snapshot it with: vllmsnap snapshot --pid " + s.pid() + " --out DIR");
        return 0;
    }
}
