-- The two functions pgpool-II calls on the main node during online recovery, in
-- template1. pgpool's own are C functions (the pgpool_recovery extension, not
-- installed in the lab's images); these PL/Perl ones do what they do: run
-- $PGDATA/<script> with the arguments pgpool passes, as the server's user, and fail if
-- it fails.
CREATE EXTENSION IF NOT EXISTS plperlu;
CREATE OR REPLACE FUNCTION pgpool_recovery(script text, remote_host text,
    remote_data_directory text, primary_port text, remote_node integer,
    remote_port text, primary_host text)
RETURNS boolean LANGUAGE plperlu AS $$
  my ($script, @args) = @_;
  my $datadir = spi_exec_query("SELECT current_setting('data_directory') AS d")->{rows}[0]{d};
  system("$datadir/$script", $datadir, @args) == 0 or die "pgpool_recovery failed: $script exited $?\n";
  return 1;
$$;
CREATE OR REPLACE FUNCTION pgpool_remote_start(remote_host text, remote_data_directory text)
RETURNS boolean LANGUAGE plperlu AS $$
  my $datadir = spi_exec_query("SELECT current_setting('data_directory') AS d")->{rows}[0]{d};
  system("$datadir/pgpool_remote_start", @_) == 0 or die "pgpool_remote_start failed: exited $?\n";
  return 1;
$$;
