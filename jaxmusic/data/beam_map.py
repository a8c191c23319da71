"""Per-item work as an Apache Beam pipeline (`pip install 'jaxmusic[beam]'`),
shared by `prepare --runner beam` and `targets --runner beam`.

Each item's result is a file the item's function writes itself, which the
caller then reads in order in its own process; so a Beam run and a local
run give byte-identical outputs. Distributed runners (Flink, Spark,
Dataflow) need those files on a filesystem every worker mounts.
"""


def beam_map(items, fn, workers: int, beam_args=()) -> None:
  """Runs `fn(item)` for each of `items` on Beam: `beam_args` are Beam's
  pipeline options, by default the DirectRunner with `workers` processes.
  Items are reshuffled so that runners spread them over workers."""
  try:
    # pylint: disable=g-import-not-at-top
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    # pylint: enable=g-import-not-at-top
  except ImportError as e:
    raise ValueError("--runner=beam needs apache-beam: pip install "
                     "'jaxmusic[beam]'") from e
  args = list(beam_args) or [
      "--runner=DirectRunner", f"--direct_num_workers={max(workers, 1)}",
      "--direct_running_mode=multi_processing"]
  with beam.Pipeline(options=PipelineOptions(args)) as p:
    _ = (p | "items" >> beam.Create(list(items)) | beam.Reshuffle()
         | "work" >> beam.Map(fn))
