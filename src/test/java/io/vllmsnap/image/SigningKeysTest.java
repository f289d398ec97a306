package io.vllmsnap.image;

import io.vllmsnap.image.ImageException.Reason;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class SigningKeysTest {

    @TempDir
    Path tmp;

    private String openssl(String... args) throws Exception {
        Path out = tmp.resolve("openssl.out");
        Process p = new ProcessBuilder(List.of(args)).redirectErrorStream(true).redirectOutput(out.toFile()).start();
        assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
        assertThat(p.exitValue()).as(Files.readString(out)).isZero();
        return Files.readString(out);
    }

    @Test
    void keyMadeByOpensslSignsAndItsDerivedPublicKeyIsOpensslsOwn() throws Exception {
        Path key = tmp.resolve("signing.key");
        openssl("openssl", "genpkey", "-algorithm", "ed25519", "-out", key.toString());
        String opensslPublic = openssl("openssl", "pkey", "-in", key.toString(), "-pubout");

        ManifestSigner signer = ManifestSigner.fromPem(Files.readAllBytes(key));
        // a Secret needs only the private key: the public key the nodes get follows from it
        assertThat(SigningKeys.publicKeyPem(signer.publicKey()).strip()).isEqualTo(opensslPublic.strip());

        byte[] manifest = "{\"files\": {}}".getBytes(StandardCharsets.UTF_8);
        byte[] sig = signer.sign(manifest);
        TrustedKeys trusted = TrustedKeys.fromPem(opensslPublic.getBytes(StandardCharsets.US_ASCII));
        assertThat(trusted.verify(manifest, sig)).isEqualTo(signer.keyId());

        // and openssl agrees that the signature is a plain Ed25519 signature over the manifest's bytes
        Path data = Files.write(tmp.resolve("m.json"), manifest);
        Path raw = Files.write(tmp.resolve("m.sig"), ManifestSignature.parse(sig).signature());
        Path pub = Files.writeString(tmp.resolve("pub.pem"), opensslPublic);
        assertThat(openssl("openssl", "pkeyutl", "-verify", "-pubin", "-inkey", pub.toString(), "-rawin", "-in",
                data.toString(), "-sigfile", raw.toString())).contains("Signature Verified Successfully");
    }

    @Test
    void rotationTrustsOldAndNewKeysAndRefusesOthers() throws Exception {
        TestImages.Keys oldKeys = TestImages.Keys.generate();
        TestImages.Keys newKeys = TestImages.Keys.generate();
        TrustedKeys both = TrustedKeys.fromPem((oldKeys.publicPem() + newKeys.publicPem()).getBytes());
        byte[] m = "{}".getBytes();
        assertThat(both.verify(m, oldKeys.signer().sign(m))).isEqualTo(oldKeys.signer().keyId());
        assertThat(both.verify(m, newKeys.signer().sign(m))).isEqualTo(newKeys.signer().keyId());
        assertThatThrownBy(() -> both.verify(m, TestImages.Keys.generate().signer().sign(m)))
                .isInstanceOfSatisfying(ImageException.class,
                        e -> assertThat(e.reason()).isEqualTo(Reason.BadSignature));
        assertThatThrownBy(() -> both.verify("{} ".getBytes(), oldKeys.signer().sign(m)))
                .isInstanceOfSatisfying(ImageException.class,
                        e -> assertThat(e.reason()).isEqualTo(Reason.BadSignature));
    }

    @Test
    void otherKeyTypesAreRefused() throws Exception {
        Path ec = tmp.resolve("ec.key");
        openssl("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", ec.toString());
        assertThatThrownBy(() -> ManifestSigner.fromPem(Files.readAllBytes(ec)))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("not an Ed25519");
        assertThatThrownBy(() -> TrustedKeys.fromPem("nothing".getBytes()))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("PUBLIC KEY");
    }
}
