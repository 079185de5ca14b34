from dlgit.cli import main

raise SystemExit(main())
