# The units test's machine: the reboot test's machine with Debian's systemd as PID 1, so the
# project's unit files run under the real thing (Type=notify, dependencies, sandboxing).
ARG MACHINE=localhost/dovecote/reboot-machine:latest
FROM ${MACHINE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends systemd systemd-sysv dbus \
 && rm -rf /var/lib/apt/lists/*
ENTRYPOINT []
CMD ["/lib/systemd/systemd"]
