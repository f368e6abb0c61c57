/**
 * `clusterip-sim completion bash|zsh`: a shell completion script written from
 * the command line itself (every command, subcommand and option as
 * registered), so it never lists a flag that does not exist.
 *   source <(clusterip-sim completion bash)      # or save it under /etc/bash_completion.d/
 */
import { Command } from 'commander';
import { UsageError } from '../sim/core/errors.ts';

/** "cmd sub" -> the words that may follow it (subcommands, then long and short options). */
export function completionWords(program: Command): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const walk = (c: Command, key: string): void => {
    const words = [...c.commands.map((s) => s.name()), ...c.options.flatMap((o) => [o.long, o.short].filter((x): x is string => !!x)), '--help'];
    out.set(key, words);
    for (const s of c.commands) walk(s, key ? `${key} ${s.name()}` : s.name());
  };
  walk(program, '');
  return out;
}

/** A bash completion function over completionWords (zsh runs it through bashcompinit). */
export function bashScript(program: Command): string {
  const cases = [...completionWords(program)].map(([k, w]) => `    '${k}') words='${w.join(' ')}' ;;`).join('\n');
  return `# clusterip-sim completion (bash; zsh: autoload -U bashcompinit && bashcompinit first)
_clusterip_sim() {
  local cur=\${COMP_WORDS[COMP_CWORD]} key='' words='' w i
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=\${COMP_WORDS[i]}
    [[ $w == -* ]] && continue
    case " $(_clusterip_sim_words "\${key:+$key }$w") " in
      *' --help '*) key="\${key:+$key }$w" ;;
    esac
  done
  words=$(_clusterip_sim_words "$key")
  if [[ $cur == -* || -n $words ]]; then
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
  fi
  # An option's value (a file, a number): let the shell complete file names.
  [[ \${#COMPREPLY[@]} -eq 0 ]] && COMPREPLY=($(compgen -f -- "$cur"))
}
_clusterip_sim_words() {
  local words=''
  case "$1" in
${cases}
  esac
  echo "$words"
}
complete -o filenames -F _clusterip_sim clusterip-sim
`;
}

export function registerCompletion(program: Command, full: () => Promise<Command>): void {
  program
    .command('completion')
    .description('Prints a shell completion script for every command and option: source <(clusterip-sim completion bash); ' +
      'zsh: autoload -U bashcompinit && bashcompinit && source <(clusterip-sim completion zsh).')
    .argument('[shell]', 'bash or zsh', 'bash')
    .action(async (shell: string) => {
      if (shell !== 'bash' && shell !== 'zsh') throw new UsageError(`completion: '${shell}' is not a shell this knows (bash, zsh)`);
      process.stdout.write(bashScript(await full()));
    });
}
