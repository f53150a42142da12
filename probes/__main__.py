from probes.cli import main

raise SystemExit(main())
