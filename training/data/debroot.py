"""Where the Debian packages the corpus scripts use live.

Here they are installed with apt and live under "/". On the device machine (no apt, no network)
the same .deb files are unpacked with `dpkg -x` into a private folder, the "root": every path
then is that folder plus the usual Debian path. The root comes from --root or from the
environment variable MTLA_DEB_ROOT, default "/".

Libraries of a root: the host's own copy of a library always wins, and only the libraries
(sonames) that the host lacks are taken from the root. prepare() links those into one folder,
<root>/.mtla-lib, which becomes LD_LIBRARY_PATH for the root's programs and for the Python
process that loads libflite and libespeak-ng (the dynamic linker reads LD_LIBRARY_PATH only at
process start: build_corpus.sh exports it before Python starts, from `python3 debroot.py
ROOT`). So Debian 12's older libc, libstdc++ or libssl never shadow the host's newer ones, and
what Python itself loads is untouched.
"""
import os
import re
import shutil
import subprocess
import sys

MULTIARCH = "x86_64-linux-gnu"
LIBLINKS = ".mtla-lib"


def default_root():
    return os.environ.get("MTLA_DEB_ROOT", "/")


class DebRoot:
    """Paths of the packages' files below one root folder."""

    def __init__(self, root=None):
        self.root = os.path.abspath(root or default_root())

    def path(self, debian_path):
        """The file that Debian installs at debian_path (absolute), below this root."""
        assert debian_path.startswith("/"), debian_path
        if self.root == "/":
            return debian_path
        return os.path.join(self.root, debian_path.lstrip("/"))

    def library_dirs(self):
        if self.root == "/":
            return ["/lib/" + MULTIARCH, "/usr/lib/" + MULTIARCH]
        return [os.path.join(self.root, LIBLINKS)]

    def bin_dirs(self):
        return [self.path("/usr/bin"), self.path("/bin")]

    def child_env(self, extra=None):
        """Environment for a program of this root: its bin/ first, its missing libraries."""
        env = dict(os.environ)
        if self.root != "/":
            env["PATH"] = os.pathsep.join(self.bin_dirs() + [env.get("PATH", "")])
            env["LD_LIBRARY_PATH"] = os.pathsep.join(
                self.library_dirs() + [env.get("LD_LIBRARY_PATH", "")]).rstrip(os.pathsep)
        env.setdefault("LC_ALL", "C.UTF-8")
        if extra:
            env.update(extra)
        return env

    def which(self, program):
        """Absolute path of program in this root's bin/ (or on PATH when the root is "/")."""
        for d in self.bin_dirs():
            p = os.path.join(d, program)
            if os.path.isfile(p) and os.access(p, os.X_OK):
                return p
        if self.root == "/":
            return shutil.which(program)
        return None

    def require(self, debian_path, package):
        """Path below the root, or an error naming the Debian package that provides it."""
        p = self.path(debian_path)
        if not os.path.exists(p):
            raise MissingPackage(package, p)
        return p

    def require_program(self, program, package):
        p = self.which(program)
        if p is None:
            raise MissingPackage(package, program)
        return p

    def prepare(self):
        """Link the root's libraries that the host lacks into <root>/.mtla-lib; their names."""
        if self.root == "/":
            return []
        host = host_sonames()
        out = os.path.join(self.root, LIBLINKS)
        if os.path.isdir(out):
            shutil.rmtree(out)
        os.makedirs(out)
        linked = []
        for d in ("/lib/" + MULTIARCH, "/usr/lib/" + MULTIARCH):
            base = self.path(d)
            if not os.path.isdir(base):
                continue
            # Private library folders too (libpulse's pulseaudio/, found by an absolute RUNPATH).
            for dirpath, dirnames, filenames in os.walk(base):
                dirnames[:] = sorted(x for x in dirnames if x in ("pulseaudio",))
                for name in sorted(filenames):
                    if not re.search(r"\.so(\.\d+)*$", name) or name in host:
                        continue
                    target = os.path.realpath(os.path.join(dirpath, name))
                    if not os.path.isfile(target) or os.path.exists(os.path.join(out, name)):
                        continue
                    os.symlink(target, os.path.join(out, name))
                    linked.append(name)
        return linked


class MissingPackage(RuntimeError):
    def __init__(self, package, what):
        super().__init__("%s not found: install (or unpack) the Debian package %s" % (what, package))
        self.package = package


# The C and C++ runtime: a host always has these, newer than Debian 12's.
CORE_SONAMES = {"libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1",
                "libresolv.so.2", "libutil.so.1", "ld-linux-x86-64.so.2", "libstdc++.so.6",
                "libgcc_s.so.1"}


def host_sonames():
    """Names of the shared libraries the host's dynamic linker finds (ldconfig's cache).

    MTLA_DEB_HOST_LIBS=core pretends the host has only CORE_SONAMES, so that every other
    library comes from the root: the tests use it to check a root the way a bare host uses it.
    """
    if os.environ.get("MTLA_DEB_HOST_LIBS") == "core":
        return set(CORE_SONAMES)
    for ldconfig in ("/sbin/ldconfig", "/usr/sbin/ldconfig", shutil.which("ldconfig")):
        if ldconfig and os.path.exists(ldconfig):
            try:
                out = subprocess.run([ldconfig, "-p"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     check=True).stdout.decode("utf-8", "replace")
            except (OSError, subprocess.CalledProcessError):
                continue
            names = set(CORE_SONAMES)
            for line in out.splitlines():
                m = re.match(r"^\s+(\S+) \(([^)]*)\)", line)
                if m and "x86-64" in m.group(2):
                    names.add(m.group(1))
            return names
    return set()


def shell_exports(root):
    """Shell lines that export MTLA_DEB_ROOT, PATH and LD_LIBRARY_PATH for root."""
    import shlex
    r = DebRoot(root)
    env = r.child_env()
    lines = ["export MTLA_DEB_ROOT=%s" % shlex.quote(r.root)]
    if r.root != "/":
        lines.append("export PATH=%s" % shlex.quote(env["PATH"]))
        lines.append("export LD_LIBRARY_PATH=%s" % shlex.quote(env["LD_LIBRARY_PATH"]))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    # python3 debroot.py ROOT: link the libraries the host lacks, print the exports for a shell.
    root = DebRoot(sys.argv[1] if len(sys.argv) > 1 else None)
    linked = root.prepare()
    if root.root != "/":
        print("%d libraries of %s are missing on this host and come from it" % (len(linked), root.root),
              file=sys.stderr)
    sys.stdout.write(shell_exports(root.root))
