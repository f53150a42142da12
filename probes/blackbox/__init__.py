"""blackbox_exporter compatibility: its blackbox.yml, its modules as http probes, the drop-in /probe endpoint
and `probe-agent import-blackbox`."""
