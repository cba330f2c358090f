from gymlab.cli import main

raise SystemExit(main())
