/* t_main.c - runs every registered test (or those named on the command line). */
#include "t.h"

t_case t_cases[512];
int t_ncases;
jmp_buf t_jmp;
char t_why[1024];

int main(int argc, char **argv)
{
    volatile int pass = 0, fail = 0;
    for (volatile int i = 0; i < t_ncases; i++) {
        if (argc > 1) {
            int want = 0;
            for (int k = 1; k < argc; k++)
                want |= !strcmp(argv[k], t_cases[i].name);
            if (!want) continue;
        }
        if (setjmp(t_jmp) == 0) {
            t_cases[i].fn();
            printf("PASS %s\n", t_cases[i].name);
            pass++;
        } else {
            printf("FAIL %s: %s\n", t_cases[i].name, t_why);
            fail++;
        }
        fflush(stdout);
    }
    return fail ? 1 : 0;
}
