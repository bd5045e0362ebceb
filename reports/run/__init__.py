"""The single-agent report: figures from figure specs, the self-contained HTML page, findings, the run's multiplicity summary, the role table and ranked scenes."""
