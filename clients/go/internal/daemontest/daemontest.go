// Package daemontest starts a real policyd daemon (the repository's Python code, offline
// default policy on the simulated provider) on a free loopback port, for integration tests.
//
// The interpreter is $POLICYD_PYTHON (default: the repository's .venv, else python3); the
// repository is found above the working directory, or named by $POLICYD_REPO.
package daemontest

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Daemon is a running `policyd serve`.
type Daemon struct {
	// Addr is "127.0.0.1:PORT".
	Addr string
	// HTTPAddr is "127.0.0.1:PORT" of the OpenAI-compatible HTTP front door.
	HTTPAddr string
	cmd      *exec.Cmd
	dataDir  string
	output   *tail
	done     chan struct{}
}

var (
	listening     = regexp.MustCompile(`policyd listening on (\S+:\d+)`)
	httpListening = regexp.MustCompile(`OpenAI-compatible HTTP on (\S+:\d+)`)
)

// Start runs the daemon, gRPC and the HTTP front door, and waits (up to 60 s) until it prints
// the addresses it listens on. Each extra is YAML appended to the bundled default policy
// (sections it lacks, such as limits: or budgets:); without extras the daemon runs the bundled default itself.
func Start(extra ...string) (*Daemon, error) {
	repo, err := repoRoot()
	if err != nil {
		return nil, err
	}
	dataDir, err := os.MkdirTemp("", "policyd-go-test-")
	if err != nil {
		return nil, err
	}
	args := []string{"-m", "policyd", "serve", "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--data-dir", dataDir}
	if len(extra) > 0 {
		bundled, err := os.ReadFile(filepath.Join(repo, "policyd", "config", "default.yaml"))
		if err != nil {
			return nil, err
		}
		policy := filepath.Join(dataDir, "policy.yaml")
		text := string(bundled) + "\n" + strings.Join(extra, "\n") + "\n"
		if err := os.WriteFile(policy, []byte(text), 0o600); err != nil {
			return nil, err
		}
		args = append(args, "--config", policy)
	}
	cmd := exec.Command(python(repo), args...)
	cmd.Dir = repo
	cmd.Env = append(os.Environ(),
		"PYTHONPATH="+repo+string(os.PathListSeparator)+filepath.Join(repo, "plugins"),
		"PYTHONUNBUFFERED=1")
	out := &tail{}
	cmd.Stderr = out
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("daemontest: start %s: %w", cmd.Path, err)
	}
	d := &Daemon{cmd: cmd, dataDir: dataDir, output: out, done: make(chan struct{})}
	addr, httpAddr := make(chan string, 1), make(chan string, 1)
	go func() {
		scanner := bufio.NewScanner(stdout)
		for scanner.Scan() {
			line := scanner.Text()
			_, _ = out.Write([]byte(line + "\n"))
			if m := listening.FindStringSubmatch(line); m != nil {
				addr <- m[1]
			}
			if m := httpListening.FindStringSubmatch(line); m != nil {
				httpAddr <- m[1]
			}
		}
	}()
	go func() { _ = cmd.Wait(); close(d.done) }()
	deadline := time.After(60 * time.Second)
	for d.Addr == "" || d.HTTPAddr == "" {
		select {
		case d.Addr = <-addr:
		case d.HTTPAddr = <-httpAddr:
		case <-d.done:
			d.Stop()
			return nil, fmt.Errorf("daemontest: the daemon exited before listening:\n%s", out)
		case <-deadline:
			d.Stop()
			return nil, fmt.Errorf("daemontest: the daemon did not listen within 60 s:\n%s", out)
		}
	}
	return d, nil
}

// Output is what the daemon has printed so far (stdout and stderr), for failure messages.
func (d *Daemon) Output() string { return d.output.String() }

// Stop sends SIGTERM (graceful shutdown), then SIGKILL after 10 s, and removes its data.
func (d *Daemon) Stop() {
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.done
	}
	_ = os.RemoveAll(d.dataDir)
}

func python(repo string) string {
	if p := os.Getenv("POLICYD_PYTHON"); p != "" {
		return p
	}
	if venv := filepath.Join(repo, ".venv", "bin", "python"); fileExists(venv) {
		return venv
	}
	return "python3"
}

func repoRoot() (string, error) {
	if r := os.Getenv("POLICYD_REPO"); r != "" {
		return filepath.Abs(r)
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if fileExists(filepath.Join(dir, "policyd", "__main__.py")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("daemontest: no policyd repository above the working directory; set POLICYD_REPO")
		}
		dir = parent
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// tail keeps the last 64 KiB the daemon printed.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - 64<<10; over > 0 {
		t.buf = t.buf[over:]
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}
