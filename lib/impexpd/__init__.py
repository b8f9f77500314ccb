"""The import/export daemon (``ganeti-impexpd``): one disk transfer between
two nodes.

The node daemon starts one process per transfer, in its own session
(:mod:`ganeti.backend.impexp`); the master pairs an importer on the
destination node with an exporter on the source node (see doc/impexpd.rst
for the whole sequence)::

    ganeti-impexpd STATUS_FILE {import|export} [options]

The network leg is socat with TLS: the importer runs ``OPENSSL-LISTEN`` on
port 0 (the kernel picks a free port) bound to the given address only,
the exporter ``OPENSSL`` to the importer's host and port. Both present a
certificate and check the peer's against a CA file (``verify=1``); the
exporter also checks the peer's common name, which is the CA certificate's
(peers present their self-signed certificate, which is also the CA, as
with Ganeti's cluster certificate and its X.509 transfer keys). The
importer learns its port from socat's ``listening on`` notice (socat runs
with ``-d -d``) and reports it in the status file.

The data leg is pumped by this process, counting bytes at the data end
for the progress figures: on export from the data source (through the
compressor) to socat's standard input, on import from socat's standard
output (through the decompressor) to the data sink. Before the data, the
exporter sends a header line holding the magic string; the importer
compares it with its own before it writes anything, so a wrong peer is
refused. The data itself travels in length-prefixed blocks ending with an
end mark, which the exporter sends only when its source ended well: an
importer whose stream stops without it fails (:mod:`.pump`).

The data end is one of ``--data-file PATH`` (a plain file: created or
replaced on import), ``--data-device PATH`` (a block device or disk image:
must exist, written in place, never created or truncated) or ``--data-cmd
COMMAND`` (a shell command whose standard output is exported, or which
reads the imported data on its standard input; for the OS export/import
scripts).

Outcomes: exit code 0 after a complete transfer (on import the sink is
fsynced first), 1 after a failure, with the reason in the status file's
``error_message``. SIGTERM (or SIGINT) aborts with the error "aborted".
The children (socat, the compressor, the data command) each run in a
process group of their own, in our session, and are killed by group and
waited for whatever the outcome.

Modules: :mod:`.options` (command line), :mod:`.status` (the status file
and progress figures), :mod:`.children` (child processes and their
output), :mod:`.socat` (socat's command lines and notices), :mod:`.pump`
(the data threads and the framing), :mod:`.transfer` (the import and
export sequences), :mod:`.main` (the program). See doc/impexpd.rst.
"""
