# Built-in demo data: synthetic H&E-like slides with labelled regions and ISH-like images, no downloads.


if "demo" in config:

    rule demo_data:
        output:
            sheet=SAMPLE_SHEET,
            files=DEMO_FILES,
        params:
            demo=config["demo"],
        log:
            PATHS.log("demo_data"),
        benchmark:
            PATHS.benchmark("demo_data")
        threads: 1
        resources:
            mem_mb=2000,
            runtime=10,
        conda:
            "../envs/tileprobe.yaml"
        script:
            "../scripts/demo_data.py"
