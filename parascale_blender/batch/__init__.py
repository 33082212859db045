"""The batch engine behind `parascale batch`: a job list run on Ray (this machine or a cluster), one task per job, each job's results written atomically as it finishes, and the dataset summary.
May import: core, the adapter (parascale_blender), the command modules of cli/ (a job runs its command's own code), ray and matplotlib (the parascale[batch] extra); bpy only inside a job's worker process.

jobs.py     the job list (JOBS.csv), its checks, and the hash of each job's inputs
tasks.py    what runs inside a Ray worker: one job into DIR/<id>/ (result.json, job.json, log.txt)
engine.py   the driver: Ray init, one task per job, retries, skipping done jobs, the progress bar
summary.py  DIR/summary.csv, summary.png, the gauge-normalised RealEstate10K pose files
"""
