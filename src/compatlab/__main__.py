from compatlab.cli import main

raise SystemExit(main())
